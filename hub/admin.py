"""The services behind the administrative commands (`hub clients`, `hub keys`, `hub audit`).

The same components a running hub opens for its registry, keys and audit log, without the source
systems: admin actions go through the same `AuthService`, so they are written to the same audit
log through the same bridge as on a running hub. Never: print or return a secret (the CLI shows a
new client's secret once), or reach a source system.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from auth import AuthService
from hub.components import _AuthAuditBridge
from hub.database import create_engine, migrate
from hub.settings import Settings
from infra.kv import open_key_value
from observability.audit import AuditLog

__all__ = ["AdminServices", "AdminUnavailable", "admin_services"]


class AdminUnavailable(Exception):
    """The hub database could not be opened, migrated or used (one line, safe to print)."""


@dataclass(frozen=True)
class AdminServices:
    auth: AuthService
    audit: AuditLog
    engine: AsyncEngine


@asynccontextmanager
async def admin_services(settings: Settings) -> AsyncIterator[AdminServices]:
    """Open (and migrate) the hub database, the key-value store, auth and the audit log."""
    async with AsyncExitStack() as stack:
        if settings.database_url.startswith("sqlite"):
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = create_engine(settings.database_url)
        stack.push_async_callback(engine.dispose)
        kv = open_key_value(settings.redis_url, settings.redis_prefix)
        stack.push_async_callback(kv.close)
        bridge = _AuthAuditBridge()
        auth = AuthService(engine, kv, settings.auth_config(), on_event=bridge)
        audit = AuditLog(
            engine, auth,
            checkpoint_every=settings.audit_checkpoint_every,
            checkpoint_seconds=settings.audit_checkpoint_seconds,
        )
        bridge.audit = audit
        try:
            await migrate(engine)
            await auth.start()
        except (SQLAlchemyError, OSError) as exc:
            raise AdminUnavailable(f"cannot open the hub database: {_first_line(exc)}") from exc
        stack.push_async_callback(auth.close)
        await audit.start()
        stack.push_async_callback(audit.close)
        try:
            yield AdminServices(auth, audit, engine)
        except SQLAlchemyError as exc:
            raise AdminUnavailable(f"hub database: {_first_line(exc)}") from exc


def _first_line(exc: BaseException) -> str:
    """SQLAlchemy messages carry the statement and a help link on further lines."""
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc) or type(exc).__name__
    return text.strip().splitlines()[0]
