"""The ASGI application factory: components opened in the lifespan, routes, transport middleware."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter
from starlette.applications import Starlette
from starlette.middleware import Middleware

from hub.components import Hub
from hub.routes import OUTAGES, dependency_unavailable, internal_error, routes
from hub.settings import Settings
from hub.transport import BodyLimits, RequestTraceContext
from observability.tracing import tracer_provider, without_query

__all__ = ["create_app", "serving_app"]


def create_app(
    settings: Settings,
    on_ready: Callable[[Hub], Awaitable[None]] | None = None,
    span_exporter: SpanExporter | None = None,
    *,
    upstream_clock: Callable[[], float] = time.monotonic,
) -> Starlette:
    """The hub as an ASGI app; `on_ready` runs once its components are open (the demo seeds).

    `span_exporter` replaces the configured exporter (tests give an in-memory one);
    `upstream_clock` is the source systems' breakers' clock (tests move it instead of sleeping).
    """
    provider = tracer_provider(settings.tracing_config(), span_exporter)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        hub = await Hub.open(settings, provider, clock=upstream_clock)
        app.state.hub = hub
        # The OAuth routes are bound to this process's AuthService, which exists only from here.
        # After the hub's own: the router tries routes in order, and POST /graphql, the first,
        # is nearly every request.
        app.router.routes.extend(hub.auth.routes())
        if on_ready is not None:
            await on_ready(hub)
        try:
            yield
        finally:
            await hub.close()

    return Starlette(
        routes=routes(),
        middleware=[
            _trace_middleware(provider, traced=settings.tracing_config().enabled),
            Middleware(
                BodyLimits,
                max_bytes=settings.max_body_bytes,
                seconds=settings.request_body_timeout_seconds,
            ),
        ],
        lifespan=lifespan,
        exception_handlers={
            Exception: internal_error, **{outage: dependency_unavailable for outage in OUTAGES}
        },
    )


def _trace_middleware(provider: TracerProvider, *, traced: bool) -> Middleware:
    """OpenTelemetry's ASGI instrumentation when spans are recorded; else only the context."""
    if not traced:
        return Middleware(RequestTraceContext)
    return Middleware(
        OpenTelemetryMiddleware,
        tracer_provider=provider,
        excluded_urls="healthz,readyz,metrics",
        exclude_spans=["receive", "send"],
        server_request_hook=without_query,  # a GET's variables stay out of the trace
    )


def serving_app() -> Starlette:
    """What each `hub serve` worker runs: settings from the environment, JSON logs, and the
    start-up heap frozen once the hub is open (`hub.runtime.settle_heap`)."""
    from hub.runtime import settle_heap
    from observability.logs import configure_logging

    configure_logging()

    async def on_ready(hub: Hub) -> None:
        settle_heap()

    return create_app(Settings(), on_ready=on_ready)
