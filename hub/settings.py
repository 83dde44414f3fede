"""The one settings object (pydantic-settings, `HUB_*` variables), built at start-up and passed down.

Nothing else in the hub reads `os.environ`.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HUB_", env_nested_delimiter="__", extra="ignore")

    # Hub state.
    database_url: str = "sqlite+aiosqlite:///var/hub.db"
    redis_url: str | None = None
    redis_prefix: str = "hub:"
    data_dir: Path = Path("var")

    # Source systems. Empty means "not configured": `hub demo` fills them with its simulators.
    wms_url: str | None = None
    cards_url: str | None = None
    agency_databases: dict[str, str] = Field(default_factory=dict)  # region code -> SQLAlchemy URL
    upstream_timeout_seconds: float = 2.0
    upstream_max_connections: int = 100
    cache_ttl_seconds: float = 30.0

    # Tokens.
    issuer: str = "http://127.0.0.1:8000"
    audience: str = "permit-hub"
    token_ttl_seconds: int = 600

    # Request limits.
    max_body_bytes: int = 256 * 1024
    max_batch_size: int = 500

    demo: bool = False
