"""The one settings object (pydantic-settings, `HUB_*` variables), built at start-up, passed down.

Nothing else in the hub reads `os.environ`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from auth import AuthConfig, TrustedIssuer
from connectors.resilience import Policy
from observability.tracing import Exporter, TracingConfig
from schema.limits import Limits

__all__ = ["Settings", "TrustedIssuerSettings"]


class TrustedIssuerSettings(BaseModel):
    """An agency identity provider whose tokens are accepted (HUB_TRUSTED_ISSUERS, JSON list)."""

    issuer: str
    jwks_url: str
    audience: str
    scope_mapping: dict[str, list[str]] = Field(default_factory=dict)
    accept_scp_claim: bool = False
    accept_scope_array: bool = False
    agency_claim: str | None = None


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
    upstream_timeouts: dict[str, float] = Field(default_factory=dict)  # "wms", "agency-420100"…
    upstream_max_connections: int = 100  # the HTTP pool, shared by the HTTP source systems
    # Resilience (connectors.resilience), per source system.
    upstream_retries: int = 2  # extra attempts for safe reads, within the same deadline
    upstream_max_concurrency: int = 50
    breaker_failure_threshold: int = 5
    breaker_open_seconds: float = 10.0
    cache_ttl_seconds: float = 30.0  # the shared permit cache; 0 turns it off

    # Permit change events (hub.events) and the webhooks they trigger (hub.webhooks).
    event_max_age_seconds: float = 600.0
    webhook_max_attempts: int = 8
    webhook_backoff_seconds: float = 2.0
    webhook_timeout_seconds: float = 5.0
    max_subscriptions_per_connection: int = Field(default=20, ge=1)  # per WebSocket

    # Tokens.
    issuer: str = "http://127.0.0.1:8000"
    audience: str = "permit-hub"
    token_ttl_seconds: int = 600
    accept_scp_claim: bool = False
    accept_scope_array: bool = False
    trusted_issuers: list[TrustedIssuerSettings] = Field(default_factory=list)
    signing_key_max_age_seconds: float = 90 * 86400  # older: /readyz reports it unready
    # argon2id cost of client secrets; every hash records its own, so lowering it (the
    # embedded test suite does) leaves the secrets hashed before still verifiable.
    secret_hash_time_cost: int = 3
    secret_hash_memory_kib: int = 65536
    secret_hash_parallelism: int = 4

    # Audit log.
    audit_checkpoint_every: int = 1000
    audit_checkpoint_seconds: float = 60.0
    audit_commit_timeout_seconds: float = 5.0

    # Request limits.
    max_body_bytes: int = 256 * 1024
    max_batch_size: int = 500

    # Query limits (schema.limits), checked before execution; over one: QUERY_TOO_COMPLEX.
    max_document_bytes: int = 16 * 1024
    max_tokens: int = 5000
    max_depth: int = 10
    max_aliases: int = 30
    max_root_fields: int = 20
    max_fields: int = 200
    max_cost: int = 20_000
    cost_budget_per_minute: int = 200_000  # per client, shared through Redis (schema.limits)
    rate_limit_per_minute: int = 1200  # GraphQL requests per client, shared through Redis

    # Trusted documents (hub.documents): "enforce" runs only each client's registered ones.
    trusted_documents: Literal["allow", "enforce"] = "allow"

    # Tracing (observability.tracing). Off: spans are not recorded, trace ids still flow.
    tracing: Literal["on", "off"] = "off"
    tracing_exporter: Exporter = "none"
    tracing_endpoint: str | None = None
    tracing_sample_ratio: float = Field(default=1.0, ge=0.0, le=1.0)

    demo: bool = False

    def tracing_config(self) -> TracingConfig:
        return TracingConfig(
            enabled=self.tracing == "on", exporter=self.tracing_exporter,
            endpoint=self.tracing_endpoint, sample_ratio=self.tracing_sample_ratio,
        )

    def upstream_policy(self, upstream: str) -> Policy:
        return Policy(
            timeout=self.upstream_timeouts.get(upstream, self.upstream_timeout_seconds),
            retries=self.upstream_retries,
            max_concurrency=self.upstream_max_concurrency,
            failure_threshold=self.breaker_failure_threshold,
            open_seconds=self.breaker_open_seconds,
        )

    def query_limits(self) -> Limits:
        return Limits(
            max_depth=self.max_depth, max_aliases=self.max_aliases,
            max_root_fields=self.max_root_fields, max_fields=self.max_fields,
            max_document_bytes=self.max_document_bytes, max_tokens=self.max_tokens,
            max_cost=self.max_cost,
        )

    def auth_config(self) -> AuthConfig:
        return AuthConfig(
            issuer=self.issuer,
            audience=self.audience,
            token_ttl_seconds=self.token_ttl_seconds,
            accept_scp_claim=self.accept_scp_claim,
            accept_scope_array=self.accept_scope_array,
            secret_hash_time_cost=self.secret_hash_time_cost,
            secret_hash_memory_kib=self.secret_hash_memory_kib,
            secret_hash_parallelism=self.secret_hash_parallelism,
            demo_webhooks=self.demo,
            trusted_issuers=tuple(
                TrustedIssuer(
                    issuer=t.issuer, jwks_url=t.jwks_url, audience=t.audience,
                    scope_mapping={k: frozenset(v) for k, v in t.scope_mapping.items()},
                    accept_scp_claim=t.accept_scp_claim, accept_scope_array=t.accept_scope_array,
                    agency_claim=t.agency_claim,
                )
                for t in self.trusted_issuers
            ),
        )
