"""The server span of each HTTP request and WebSocket, written on the OpenTelemetry API.

OpenTelemetry's ASGI instrumentation does the same and more (a span per `receive` and `send`,
header capture, metrics), at several times the cost per request. The hub needs one span per
request, the client's `traceparent` honoured, and the attributes operators query by:

    <METHOD> <path>   kind SERVER
      http.request.method, url.path, url.scheme, http.response.status_code,
      network.peer.address; status ERROR for a 5xx

Never the query string or a header value: they may carry identifiers or tokens. Paths the
operators' probes call (`/healthz`, `/readyz`, `/metrics`) get no span, only the context, so
their trace id still reaches a log line.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

from opentelemetry import context
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["ServerSpans"]

Untraced = Callable[[ASGIApp], ASGIApp]
_W3C = TraceContextTextMapPropagator()


class ServerSpans:
    def __init__(
        self,
        app: ASGIApp,
        tracer: Tracer,
        untraced: Untraced,
        excluded_paths: Collection[str] = ("/healthz", "/readyz", "/metrics"),
    ) -> None:
        self.app = app
        self.tracer = tracer
        self.excluded = frozenset(excluded_paths)
        self.untraced = untraced(app)  # the same context, no span, for excluded paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket") or scope["path"] in self.excluded:
            await self.untraced(scope, receive, send)
            return
        carrier = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in scope["headers"]
            if name in (b"traceparent", b"tracestate")
        }
        parent = _W3C.extract(carrier) if carrier else context.Context()
        method = scope.get("method", "GET") if kind == "http" else "WEBSOCKET"
        client = scope.get("client")
        with self.tracer.start_as_current_span(
            f"{method} {scope['path']}",
            context=parent,
            kind=SpanKind.SERVER,
            attributes={
                "http.request.method": method,
                "url.path": scope["path"],
                "url.scheme": scope.get("scheme", "http"),
                "network.peer.address": client[0] if client else "",
            },
            record_exception=False,
            set_status_on_exception=True,
        ) as span:
            if not span.is_recording():
                await self.app(scope, receive, send)
                return

            async def noting_send(message: Message) -> None:
                if message["type"] == "http.response.start":
                    status = int(message["status"])
                    span.set_attribute("http.response.status_code", status)
                    if status >= 500:
                        span.set_status(Status(StatusCode.ERROR))
                await send(message)

            await self.app(scope, receive, noting_send)
