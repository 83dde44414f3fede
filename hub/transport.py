"""Transport step of the request path: body size limit, body deadline, the W3C trace id.

The first of the hub's files a request passes (docs/architecture.md).

Plain ASGI: `BaseHTTPMiddleware` costs a task per request, so this is written against ASGI
directly.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import time

from opentelemetry import context
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.trace import (
    NonRecordingSpan,
    SpanContext,
    TraceFlags,
    get_current_span,
    set_span_in_context,
)
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from observability.logs import current_client_id
from observability.tracing import current_trace_id

__all__ = [
    "BodyLimits",
    "BodyTimeout",
    "BodyTooLarge",
    "RequestLog",
    "RequestTraceContext",
    "trace_id_of",
]

log = logging.getLogger("hub.transport")
_request_log = logging.getLogger("hub.requests")

_TRACEPARENT = re.compile(rb"^00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$")


def trace_id_of(scope: Scope) -> str:
    """The request's trace id, stored on the scope: the current span's (the tracing middleware
    took it from the client's `traceparent`, or began a trace), else the header's, else new."""
    state = scope.setdefault("state", {})
    if "trace_id" in state:
        return str(state["trace_id"])
    trace_id = current_trace_id()
    if trace_id is not None:
        state["trace_id"] = trace_id
        return trace_id
    for name, value in scope.get("headers", ()):
        if name == b"traceparent":
            match = _TRACEPARENT.match(value.strip())
            if match and match.group(1) != b"0" * 32:
                trace_id = match.group(1).decode()
            break
    state["trace_id"] = trace_id or secrets.token_hex(16)
    return str(state["trace_id"])


_W3C = TraceContextTextMapPropagator()
_IDS = RandomIdGenerator()


class RequestTraceContext:
    """With tracing off (or on a path without a span), the request's trace context alone.

    The client's `traceparent` (read by OpenTelemetry's W3C propagator), or a new trace id,
    becomes a non-recording span around the request, so every span the hub starts under it
    shares its trace id and the id still reaches the audit record, the errors and the source
    systems (the httpx instrumentation sends it on). With tracing on,
    `observability.server_spans.ServerSpans` does this and records the server span.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        carrier = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in scope["headers"]
            if name in (b"traceparent", b"tracestate")
        }
        extracted = _W3C.extract(carrier) if carrier else context.Context()
        parent = get_current_span(extracted).get_span_context()
        flags = parent.trace_flags if parent.is_valid else TraceFlags.DEFAULT
        span = NonRecordingSpan(
            SpanContext(
                trace_id=parent.trace_id if parent.is_valid else _IDS.generate_trace_id(),
                span_id=_IDS.generate_span_id(),
                is_remote=False,
                trace_flags=TraceFlags(flags),
                trace_state=parent.trace_state if parent.is_valid else None,
            )
        )
        token = context.attach(set_span_in_context(span, extracted))
        try:
            await self.app(scope, receive, send)
        finally:
            context.detach(token)


class BodyTooLarge(Exception):
    """The request body is larger than the configured limit."""


class BodyTimeout(Exception):
    """The request body did not fully arrive within the deadline."""


class BodyLimits:
    """A request body must be at most `max_bytes` (413, whether announced by content-length or
    streamed) and must arrive within `seconds` of its headers (else 408, and the connection is
    closed); a client that hangs up mid-body is one INFO line, not an error.

    One wrapper of `receive` does both, so the hot path pays one middleware layer. Only the
    body is timed: once it is complete, `receive` is the server's own again (it then waits for
    the client to disconnect, which is not a body arriving late).
    """

    def __init__(self, app: ASGIApp, max_bytes: int, seconds: float) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length" and (not value.isdigit() or int(value) > self.max_bytes):
                await _too_large(send)
                return
        deadline = asyncio.get_running_loop().time() + self.seconds
        received = 0
        complete = False

        async def bounded() -> Message:
            nonlocal received, complete
            if complete:
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise BodyTimeout from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge
            complete = message["type"] != "http.request" or not message.get("more_body", False)
            return message

        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, bounded, tracking_send)
        except BodyTooLarge:
            if not started:
                await _too_large(send)
        except BodyTimeout:
            log.info("request body not received within %s s (trace %s)",
                     self.seconds, trace_id_of(scope))
            if not started:
                await _request_timeout(send)
        except ClientDisconnect:
            # Nobody is left to answer, and nothing went wrong on the hub's side.
            log.info("client disconnected before its request body arrived (trace %s)",
                     trace_id_of(scope))


async def _too_large(send: Send) -> None:
    body = (
        b'{"errors":[{"message":"request body too large","extensions":{"code":"BAD_USER_INPUT"}}]}'
    )
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _request_timeout(send: Send) -> None:
    body = (
        b'{"errors":[{"message":"request body not received in time",'
        b'"extensions":{"code":"BAD_USER_INPUT"}}]}'
    )
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),  # the rest of the body may still come: not a next request
    ]
    await send({"type": "http.response.start", "status": 408, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class RequestLog:
    """One log line per HTTP request once it is answered: method, path, status, client, time.

    On in the demo (`HUB_REQUEST_LOG`, default off in production, where the audit log and the
    metrics count every request): a newcomer sees the agencies' calls arrive, not only the
    hub's calls to the source systems. The client is the one the gate admitted (bound to the
    request's log context); never the query string, which may carry identifiers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0

        async def noting_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, noting_send)
        finally:
            elapsed = (time.perf_counter() - started) * 1000
            _request_log.info(
                "%s %s %s %s %.1f ms", scope["method"], scope["path"], status or "-",
                current_client_id() or "-", elapsed,
            )

