"""OpenTelemetry tracing: one tracer provider per hub, its exporter and sampling from settings.

    HTTP request (asgi instrumentation, `traceparent` from the client honoured)
    ├── graphql <operation>          name, document hash, client; never the variables
    │   ├── cache.permits            hits, misses
    │   ├── upstream wms|cards|agency-<region>   one per guarded call: retries, result
    │   │   └── HTTP POST …          (httpx instrumentation, `traceparent` sent on)
    └── audit.append                 until the record is durably committed

The provider is the hub's own rather than the process-global one, so that several hubs in one
process (tests, the two-instance checks) each keep their exporter. The ASGI and httpx
instrumentations take a provider per app and per client; the SQLAlchemy one is a process-wide
switch, so SQL calls to the agencies are spanned by their guard ("upstream agency-<region>").
With tracing off every span is a non-recording one: nothing is exported, but the trace id
still flows from the client's `traceparent` into the audit record, the error `extensions` and
the calls to source systems.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal

from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased, Sampler, TraceIdRatioBased
from opentelemetry.trace import NonRecordingSpan, NoOpTracer, Span, get_current_span

__all__ = [
    "Exporter",
    "PassThroughTracer",
    "TracingConfig",
    "current_trace_id",
    "tracer_provider",
    "without_query",
]

Exporter = Literal["none", "console", "otlp-http", "otlp-grpc"]


@dataclass(frozen=True, slots=True)
class TracingConfig:
    enabled: bool = False
    exporter: Exporter = "none"
    endpoint: str | None = None  # OTLP endpoint; the exporter's default if None
    sample_ratio: float = 1.0
    service_name: str = "permit-hub"


def _sampler(config: TracingConfig) -> Sampler:
    if not config.enabled:
        return ALWAYS_OFF
    # A caller's sampling decision (its traceparent flags) is kept; new traces are sampled
    # at `sample_ratio`.
    return ParentBased(TraceIdRatioBased(config.sample_ratio))


def _exporter(config: TracingConfig) -> SpanExporter | None:
    if config.exporter == "console":
        return ConsoleSpanExporter()
    if config.exporter == "otlp-http":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
            OTLPSpanExporter as HttpExporter,
        )

        return HttpExporter(endpoint=config.endpoint) if config.endpoint else HttpExporter()
    if config.exporter == "otlp-grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
            OTLPSpanExporter as GrpcExporter,
        )

        return GrpcExporter(endpoint=config.endpoint) if config.endpoint else GrpcExporter()
    return None


def tracer_provider(
    config: TracingConfig, exporter: SpanExporter | None = None
) -> TracerProvider:
    """The hub's provider. `exporter` (tests: an in-memory one) is exported to synchronously."""
    provider = TracerProvider(
        resource=Resource.create({"service.name": config.service_name}),
        sampler=_sampler(config),
    )
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    elif config.enabled:
        configured = _exporter(config)
        if configured is not None:
            provider.add_span_processor(BatchSpanProcessor(configured))
    return provider


def current_trace_id(span: Span | None = None) -> str | None:
    """The 32-hex trace id of `span` (default: the current one), if it has a valid context."""
    context = (span or get_current_span()).get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


class _CurrentSpan:
    """`with` the span that is already current: nothing to attach, end or record."""

    __slots__ = ("span",)

    def __init__(self, span: Span) -> None:
        self.span = span

    def __enter__(self) -> Span:
        return self.span

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        return None


class PassThroughTracer(NoOpTracer):
    """The hub's tracer with tracing off: every span it starts is the one already current.

    The API's `NoOpTracer` does the same (under a non-recording span it hands that span on,
    so the trace id still flows), but through a generator context manager, `use_span` and a
    context attach and detach each time: about 15 calls a span, six spans a request. Here a
    span under a non-recording one costs one call. Anything else (an explicit context, a
    recording current span) goes the API's way.
    """

    def start_as_current_span(
        self, name: str, context: Context | None = None, *args: Any, **kwargs: Any
    ) -> Any:
        current = get_current_span()
        if context is None and not args and not kwargs and isinstance(current, NonRecordingSpan):
            return _CurrentSpan(current)
        return super().start_as_current_span(name, context, *args, **kwargs)


#: The server span's attributes that carry the request's query string (old and new semantic
#: conventions of OpenTelemetry's ASGI instrumentation).
_URL_ATTRIBUTES = ("http.url", "url.full", "http.target")


def without_query(span: Span, scope: dict[str, Any]) -> None:
    """The ASGI instrumentation's `server_request_hook`: the server span keeps the URL without
    its query string, which a `GET /graphql` fills with its variables (identity numbers)."""
    if not scope.get("query_string") or not span.is_recording():
        return
    attributes = getattr(span, "attributes", None) or {}
    for name in _URL_ATTRIBUTES:
        value = attributes.get(name)
        if isinstance(value, str) and "?" in value:
            span.set_attribute(name, value.split("?", 1)[0])
    if "url.query" in attributes:
        span.set_attribute("url.query", "")
