"""One wiring: the components every hub process opens, built in one place.

`open_core` opens (and migrates) the hub database, the key-value store, the auth service, the
audit log and the trusted documents. The serving hub (`hub.components.Hub.open`) and the
administrative commands (`hub.admin.admin_services`) both call it, so a client added with
`hub clients add` goes through the same `AuthService`, the same audit bridge and the same audit
settings as a token issued by a running hub. Never: reach a source system, or read settings
other than through the `Settings` it is given.
"""

from __future__ import annotations

import datetime as dt
from contextlib import AsyncExitStack
from dataclasses import dataclass

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from auth import AuthEvent, AuthService
from hub.database import create_engine, migrate
from hub.documents import TrustedDocuments
from hub.settings import Settings
from infra.kv import KeyValue, open_key_value
from infra.shared_state import SharedState
from observability.audit import AuditEvent, AuditLog

__all__ = ["Core", "open_core"]


@dataclass(kw_only=True)
class Core:
    """The hub database and what lives on it: shared by the serving hub and the admin CLI."""

    settings: Settings
    engine: AsyncEngine
    kv: KeyValue
    auth: AuthService
    audit: AuditLog
    documents: TrustedDocuments

    async def close(self) -> None:
        # The audit writer drains first: its last records and checkpoint are signed by auth's
        # keys and may wait on the key-value store and the database.
        await self.audit.close()
        await self.auth.close()
        await self.kv.close()
        await self.engine.dispose()


class _AuthAuditBridge:
    """Writes the auth service's events (token issued/refused/revoked, admin) to the audit log.

    Raising here makes the token endpoint fail, so no token is issued without its record.
    """

    audit: AuditLog | None = None

    async def __call__(self, event: AuthEvent) -> None:
        assert self.audit is not None
        admin = event.kind in ("client_changed", "purpose_changed", "key_rotated")
        await self.audit.append(
            AuditEvent(
                time=dt.datetime.now(dt.UTC),
                kind="admin" if admin else "token",
                outcome="OK" if event.outcome == "success" else "DENIED",
                client_id=event.client_id,
                purpose=event.purpose,
                operation=event.kind,
                # A purpose's root fields as it now covers them; what an administrator changed
                # in a client (`scopes: +a -b`, `added ...`).
                fields=(
                    event.operations if event.kind == "purpose_changed"
                    else (event.detail,) if admin and event.detail else ()
                ),
                error_codes=(event.error_code,) if event.error_code else (),
                client_address=event.address,
            )
        )


async def open_core(settings: Settings, *, http: httpx.AsyncClient | None = None) -> Core:
    """Open the core components in dependency order; on failure, close what was opened.

    `http` is the client auth uses to fetch trusted issuers' keys (the caller closes it); without
    one, auth opens its own when it needs one.
    """
    async with AsyncExitStack() as opened:
        engine = _database_engine(settings)
        opened.push_async_callback(engine.dispose)
        await migrate(engine)
        kv = open_key_value(settings.redis_url, settings.redis_prefix)
        opened.push_async_callback(kv.close)
        auth, audit = _auth_and_audit(settings, engine, kv, http)
        await auth.start()
        opened.push_async_callback(auth.close)
        await audit.start()
        opened.push_async_callback(audit.close)
        core = Core(
            settings=settings,
            engine=engine,
            kv=kv,
            auth=auth,
            audit=audit,
            documents=TrustedDocuments(engine, settings.trusted_documents),
        )
        opened.pop_all()  # opened for good: `Core.close` closes them from now on
    return core


def _database_engine(settings: Settings) -> AsyncEngine:
    if settings.database_url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)  # SQLite's file lives there
    return create_engine(settings.database_url)


def _auth_and_audit(
    settings: Settings, engine: AsyncEngine, kv: KeyValue, http: httpx.AsyncClient | None
) -> tuple[AuthService, AuditLog]:
    """Auth and the audit log, each needing the other: auth's events are audited through the
    bridge, the audit log's checkpoints are signed with auth's keys."""
    bridge = _AuthAuditBridge()
    shared = SharedState(kv, settings.shared_state_max_staleness)
    auth = AuthService(
        engine, kv, settings.auth_config(), http=http, on_event=bridge, shared_state=shared
    )
    audit = AuditLog(
        engine,
        auth,
        checkpoint_every=settings.audit_checkpoint_every,
        checkpoint_seconds=settings.audit_checkpoint_seconds,
        commit_timeout=settings.audit_commit_timeout_seconds,
    )
    bridge.audit = audit
    return auth, audit
