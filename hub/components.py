"""The hub's long-lived components, opened once at start-up and shared by every request."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from dataclasses import dataclass, field

import httpx
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import NoOpTracerProvider, Tracer
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from auth import AuthEvent, AuthService
from auth.webhook_targets import WebhookTargets
from connectors._http import new_http_client
from connectors.agency import SqlEnrollmentSource, create_agency_engines
from connectors.cache import CachedPermitSource
from connectors.cards import HttpCardSource
from connectors.events import EventBus, PermitChange, open_event_bus
from connectors.resilience import Guard
from connectors.wms import HttpPermitSource
from hub.database import create_engine, migrate
from hub.documents import TrustedDocuments
from hub.settings import Settings
from hub.webhooks import WebhookWorker
from infra.counters import CostBudget, RateLimit
from infra.kv import KeyValue, open_key_value
from observability.audit import AuditEvent, AuditLog
from observability.metrics import HubMetrics
from observability.tracing import PassThroughTracer, tracer_provider
from schema import GraphQLService, Sources

__all__ = ["Hub", "NotConfigured"]

log = logging.getLogger("hub")


class NotConfigured(Exception):
    """A source system has no address in the settings."""


class _AuthAuditBridge:
    """Writes the auth service's events (token issued/refused/revoked, admin) to the audit log.

    Raising here makes the token endpoint fail, so no token is issued without its record.
    """

    audit: AuditLog | None = None

    async def __call__(self, event: AuthEvent) -> None:
        assert self.audit is not None
        admin = event.kind in ("client_changed", "key_rotated")
        await self.audit.append(
            AuditEvent(
                time=dt.datetime.now(dt.UTC),
                kind="admin" if admin else "token",
                outcome="OK" if event.outcome == "success" else "DENIED",
                client_id=event.client_id,
                operation=event.kind,
                error_codes=(event.error_code,) if event.error_code else (),
                client_address=event.address,
            )
        )


@dataclass
class Hub:
    settings: Settings
    engine: AsyncEngine
    kv: KeyValue
    http: httpx.AsyncClient
    auth: AuthService
    audit: AuditLog
    permits: CachedPermitSource
    enrollments: SqlEnrollmentSource
    cards: HttpCardSource
    graphql: GraphQLService
    metrics: HubMetrics
    cost_budget: CostBudget
    bus: EventBus
    webhooks: WebhookWorker
    documents: TrustedDocuments
    rate_limit: RateLimit
    tracer_provider: TracerProvider
    tracer: Tracer
    _readiness_check: asyncio.Future[dict[str, bool | str]] | None = field(
        default=None, init=False, repr=False
    )
    _last_readiness: tuple[float, dict[str, bool | str]] | None = field(
        default=None, init=False, repr=False
    )

    @classmethod
    async def open(cls, settings: Settings, provider: TracerProvider | None = None) -> Hub:
        if not settings.wms_url or not settings.cards_url:
            raise NotConfigured("HUB_WMS_URL and HUB_CARDS_URL must be set (or run `hub demo`)")
        shared_state = settings.shared_state_problem()
        if shared_state is not None:
            raise NotConfigured(shared_state)
        if settings.database_url.startswith("sqlite"):
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = create_engine(settings.database_url)
        await migrate(engine)
        timeout = settings.upstream_timeout_seconds
        # Each source system's guard holds its own deadline; the pool must not cut it shorter.
        http_timeout = max([timeout, *settings.upstream_timeouts.values()])
        http = new_http_client(http_timeout, settings.upstream_max_connections)
        provider = provider or tracer_provider(settings.tracing_config())
        # Tracing off: spans that are the request's (non-recording) one, handed on as it is, so
        # the trace id still flows; the SDK's would sample, number and discard a span for each
        # (about 150 function calls a request), the API's no-op one costs 15 calls a span.
        traced = settings.tracing_config().enabled
        tracing: TracerProvider | NoOpTracerProvider = provider if traced else NoOpTracerProvider()
        tracer = tracing.get_tracer("permit-hub") if traced else PassThroughTracer()
        # Client spans for every call to a source system, and `traceparent` sent on to it.
        HTTPXClientInstrumentor.instrument_client(http, tracer_provider=tracing)
        kv = open_key_value(settings.redis_url, settings.redis_prefix)
        bridge = _AuthAuditBridge()
        auth = AuthService(engine, kv, settings.auth_config(), http=http, on_event=bridge)
        await auth.start()
        audit = AuditLog(
            engine,
            auth,
            checkpoint_every=settings.audit_checkpoint_every,
            checkpoint_seconds=settings.audit_checkpoint_seconds,
            commit_timeout=settings.audit_commit_timeout_seconds,
        )
        bridge.audit = audit
        await audit.start()
        engines = create_agency_engines(settings.agency_databases, timeout)
        policy = settings.upstream_policy
        wms = HttpPermitSource(
            http, settings.wms_url, guard=Guard("wms", policy("wms"), tracer=tracer)
        )
        permits = CachedPermitSource(wms, kv, settings.cache_ttl_seconds, tracer=tracer)
        enrollments = SqlEnrollmentSource(engines, timeout, policy_for=policy, tracer=tracer)
        cards = HttpCardSource(
            http, settings.cards_url, guard=Guard("cards", policy("cards"), tracer=tracer)
        )
        bus = open_event_bus(settings.redis_url, settings.redis_prefix)

        async def drop_cached(change: PermitChange) -> None:
            # The instance that took the event already did; this covers the others.
            await permits.invalidate([change.permit_number])

        bus.add_listener(drop_cached)
        await bus.start()
        webhooks = WebhookWorker(
            engine,
            httpx.AsyncClient(timeout=settings.webhook_timeout_seconds, follow_redirects=False),
            auth.sign_jws,
            issuer=settings.issuer,
            max_attempts=settings.webhook_max_attempts,
            backoff_seconds=settings.webhook_backoff_seconds,
            targets=WebhookTargets(demo=settings.demo),
        )
        webhooks.start()
        graphql = GraphQLService(
            Sources(permits=permits, enrollments=enrollments, cards=cards, events=bus),
            served_regions=frozenset(engines),
            max_batch=settings.max_batch_size,
            audit=audit,
            limits=settings.query_limits(),
        )
        metrics = HubMetrics()
        metrics.watch_audit(lambda: audit.stats)
        audit.on_commit = metrics.observe_audit_commit
        metrics.watch_cache("permits", lambda: permits.stats)
        guards = [wms.guard, cards.guard, *enrollments.guards.values()]
        for guard in guards:
            guard.observers.append(metrics.observe_upstream)
            metrics.watch_upstream(lambda g=guard: g)  # type: ignore[misc]
        budget = CostBudget(kv, settings.cost_budget_per_minute)
        return cls(
            settings,
            engine,
            kv,
            http,
            auth,
            audit,
            permits,
            enrollments,
            cards,
            graphql,
            metrics,
            budget,
            bus,
            webhooks,
            TrustedDocuments(engine, settings.trusted_documents),
            RateLimit(kv, settings.rate_limit_per_minute),
            provider,
            tracer,
        )

    async def shared_readiness(self) -> dict[str, bool | str]:
        """`readiness`, made at most once a second and shared by the callers meanwhile: what an
        unauthenticated `/readyz` gets, so a flood of them cannot turn into a flood of pings to
        every source system and database."""
        now = time.monotonic()
        if self._last_readiness is not None and now - self._last_readiness[0] < 1.0:
            return self._last_readiness[1]
        if self._readiness_check is None:
            self._readiness_check = asyncio.ensure_future(self.readiness())
        check = self._readiness_check
        try:
            checks = await asyncio.shield(check)
        finally:
            if self._readiness_check is check and check.done():
                self._readiness_check = None
        self._last_readiness = (time.monotonic(), checks)
        return checks

    async def readiness(self) -> dict[str, bool | str]:
        """Each dependency: True (answers), False (does not), or a word for what stands in for
        it: "in-process" when there is no Redis (fine for one process, and only then)."""
        redis: bool | str = await self.kv.ping() if self.kv.shared else "in-process"
        checks: dict[str, bool | str] = {"database": await self._database_ok(), "redis": redis}
        checks["audit"] = await self.audit.writable()
        # A key older than the rotation period means `hub keys rotate` is not being run.
        max_age = self.settings.signing_key_max_age_seconds
        checks["signing_key"] = self.auth.signing_key_age() < max_age
        checks["wms"] = await self.permits.ping()
        checks["cards"] = await self.cards.ping()
        for region, ok in (await self.enrollments.ping()).items():
            checks[f"agency-{region}"] = ok
        return checks

    async def _database_ok(self) -> bool:
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except (SQLAlchemyError, OSError):
            return False
        return True

    async def close(self) -> None:
        self.tracer_provider.shutdown()  # flushes the spans still queued
        await self.webhooks.close()
        await self.bus.close()
        await self.audit.close()
        await self.auth.close()
        await self.http.aclose()
        await self.enrollments.close()
        await self.kv.close()
        await self.engine.dispose()
