"""The hub's long-lived components, opened once at start-up and shared by every request."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import NoOpTracerProvider, Tracer
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from auth.webhook_targets import WebhookTargets
from connectors._http import new_http_client
from connectors.agency import SqlEnrollmentSource, create_agency_engines
from connectors.cache import CachedPermitSource
from connectors.cards import HttpCardSource
from connectors.events import PERMIT_EVENT, EventBus, StreamEventBus
from connectors.resilience import Guard
from connectors.wms import HttpPermitSource
from hub.enrollment_claims import SqlEnrollmentClaims, stale_after
from hub.live_cards import SqlLiveCardRegister
from hub.settings import Settings
from hub.webhooks import WebhookWorker
from hub.wiring import Core, open_core
from infra.counters import CostBudget, Counters, RateLimit
from infra.kv import KeyValue
from infra.shared_state import SharedState
from observability.audit import AuditLog
from observability.metrics import HubMetrics
from observability.tracing import PassThroughTracer, tracer_provider
from schema import GraphQLService, Sources

__all__ = ["Hub", "NotConfigured"]

log = logging.getLogger("hub")


class NotConfigured(Exception):
    """A source system has no address in the settings."""


@dataclass(kw_only=True)
class Hub(Core):
    """The core components (`hub.wiring.Core`) and those that serve requests."""

    http: httpx.AsyncClient
    permits: CachedPermitSource
    enrollments: SqlEnrollmentSource
    cards: HttpCardSource
    graphql: GraphQLService
    metrics: HubMetrics
    cost_budget: CostBudget
    bus: EventBus
    webhooks: WebhookWorker
    rate_limit: RateLimit
    counters: Counters  # the rate's and the budget's, reconciled with the other instances
    tracer_provider: TracerProvider
    tracer: Tracer
    _readiness_check: asyncio.Future[dict[str, bool | str]] | None = field(
        default=None, init=False, repr=False
    )
    _last_readiness: tuple[float, dict[str, bool | str]] | None = field(
        default=None, init=False, repr=False
    )

    @classmethod
    async def open(
        cls,
        settings: Settings,
        provider: TracerProvider | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> Hub:
        """`clock` is the source systems' breakers' (tests move it instead of sleeping)."""
        wms_url, cards_url = _source_addresses(settings)
        http = _upstream_client(settings)
        core = await open_core(settings, http=http)
        provider = provider or tracer_provider(settings.tracing_config())
        tracer = _tracer(settings, provider, http)
        kv = core.kv
        sources = _Sources.open(
            settings, http, kv, tracer, wms_url=wms_url, cards_url=cards_url, clock=clock,
            shared=core.auth.shared_state,
        )
        bus = StreamEventBus(core.auth.shared_state)
        webhooks = _start_webhooks(settings, core)
        claims = SqlEnrollmentClaims(core.engine, stale_after(settings.upstream_timeout_seconds))
        graphql = _graphql_service(settings, sources, claims, bus, core)
        metrics = _metrics(core.audit, sources)
        counters = Counters(kv, settings.counter_sync_interval)
        counters.start()
        return cls(
            settings=settings,
            engine=core.engine,
            kv=kv,
            auth=core.auth,
            audit=core.audit,
            documents=core.documents,
            http=http,
            permits=sources.permits,
            enrollments=sources.enrollments,
            cards=sources.cards,
            graphql=graphql,
            metrics=metrics,
            cost_budget=CostBudget(counters, settings.cost_budget_per_minute),
            bus=bus,
            webhooks=webhooks,
            rate_limit=RateLimit(counters, settings.rate_limit_per_minute),
            counters=counters,
            tracer_provider=provider,
            tracer=tracer,
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
        await self.counters.close()  # sends what is left, before the store closes
        self.tracer_provider.shutdown()  # flushes the spans still queued
        await self.webhooks.close()
        await super().close()  # drains the audit writer, then closes auth, kv and the database
        await self.http.aclose()
        await self.enrollments.close()


# -- the steps of `Hub.open`, in the order it takes them -----------------------------------------


def _source_addresses(settings: Settings) -> tuple[str, str]:
    """The permit (WMS) and card systems' addresses, checked before anything is opened."""
    if not settings.wms_url or not settings.cards_url:
        raise NotConfigured("HUB_WMS_URL and HUB_CARDS_URL must be set (or run `hub demo`)")
    shared_state = settings.shared_state_problem()
    if shared_state is not None:
        raise NotConfigured(shared_state)
    return settings.wms_url, settings.cards_url


def _upstream_client(settings: Settings) -> httpx.AsyncClient:
    """The pooled client for the source systems (and auth's trusted issuers)."""
    # Each source system's guard holds its own deadline; the pool must not cut it shorter.
    timeout = max([settings.upstream_timeout_seconds, *settings.upstream_timeouts.values()])
    return new_http_client(timeout, settings.upstream_max_connections)


def _tracer(settings: Settings, provider: TracerProvider, http: httpx.AsyncClient) -> Tracer:
    """The hub's tracer; calls through `http` get client spans from the same provider.

    Tracing off: spans that are the request's (non-recording) one, handed on as it is, so the
    trace id still flows; the SDK's would sample, number and discard a span for each (about 150
    function calls a request), the API's no-op one costs 15 calls a span.
    """
    traced = settings.tracing_config().enabled
    tracing: TracerProvider | NoOpTracerProvider = provider if traced else NoOpTracerProvider()
    tracer = tracing.get_tracer("permit-hub") if traced else PassThroughTracer()
    # Client spans for every call to a source system, and `traceparent` sent on to it.
    HTTPXClientInstrumentor.instrument_client(http, tracer_provider=tracing)
    return tracer


@dataclass(frozen=True, kw_only=True)
class _Sources:
    """The source systems, each behind its guard (the permits also behind the shared cache)."""

    wms: HttpPermitSource
    permits: CachedPermitSource
    enrollments: SqlEnrollmentSource
    cards: HttpCardSource
    regions: frozenset[str]

    @classmethod
    def open(
        cls,
        settings: Settings,
        http: httpx.AsyncClient,
        kv: KeyValue,
        tracer: Tracer,
        *,
        wms_url: str,
        cards_url: str,
        clock: Callable[[], float],
        shared: SharedState,
    ) -> _Sources:
        timeout = settings.upstream_timeout_seconds
        policy = settings.upstream_policy
        engines = create_agency_engines(settings.agency_databases, timeout)
        wms = HttpPermitSource(
            http, wms_url, guard=Guard("wms", policy("wms"), clock=clock, tracer=tracer)
        )
        return cls(
            wms=wms,
            permits=CachedPermitSource(
                wms, kv, settings.cache_ttl_seconds, tracer=tracer, shared=shared
            ),
            enrollments=SqlEnrollmentSource(
                engines, timeout, policy_for=policy, tracer=tracer, clock=clock
            ),
            cards=HttpCardSource(
                http, cards_url, guard=Guard("cards", policy("cards"), clock=clock, tracer=tracer)
            ),
            regions=frozenset(engines),
        )

    @property
    def guards(self) -> list[Guard]:
        return [self.wms.guard, self.cards.guard, *self.enrollments.guards.values()]


def _start_webhooks(settings: Settings, core: Core) -> WebhookWorker:
    webhooks = WebhookWorker(
        core.engine,
        httpx.AsyncClient(timeout=settings.webhook_timeout_seconds, follow_redirects=False),
        core.auth.sign_jws,
        issuer=settings.issuer,
        max_attempts=settings.webhook_max_attempts,
        backoff_seconds=settings.webhook_backoff_seconds,
        targets=WebhookTargets(demo=settings.demo),
    )
    webhooks.start()
    # Another instance took a permit event: deliveries may have been queued.
    core.auth.shared_state.on(PERMIT_EVENT, lambda _: webhooks.wake())
    return webhooks


def _graphql_service(
    settings: Settings, sources: _Sources, claims: SqlEnrollmentClaims, bus: EventBus,
    core: Core,
) -> GraphQLService:
    return GraphQLService(
        Sources(
            permits=sources.permits,
            enrollments=sources.enrollments,
            cards=sources.cards,
            claims=claims,
            events=bus,
            # In the hub's own database, which every instance shares: the one-live-card rule
            # holds across instances (`hub.live_cards`).
            live_cards=SqlLiveCardRegister(core.engine),
        ),
        served_regions=sources.regions,
        max_batch=settings.max_batch_size,
        audit=core.audit,
        limits=settings.query_limits(),
    )


def _metrics(audit: AuditLog, sources: _Sources) -> HubMetrics:
    """The metrics, watching the audit writer, the permit cache and every source's guard."""
    metrics = HubMetrics()
    metrics.watch_audit(lambda: audit.stats)
    audit.on_commit = metrics.observe_audit_commit
    metrics.watch_cache("permits", lambda: sources.permits.stats)
    for guard in sources.guards:
        guard.observers.append(metrics.observe_upstream)
        metrics.watch_upstream(lambda g=guard: g)  # type: ignore[misc]
    return metrics
