"""Prometheus metrics of one hub process, served at `/metrics`.

One registry per hub (not the global one), so several hubs in one process (tests) never mix.
Labels are bounded sets only: client ids come from the registry and root fields from the
schema; the client-chosen operation name and document are never labels (an attacker could
otherwise grow the series without bound).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = ["CONTENT_TYPE", "AuditCounters", "CacheCounters", "HubMetrics", "UpstreamState"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class AuditCounters(Protocol):
    @property
    def records(self) -> int: ...
    @property
    def commits(self) -> int: ...
    @property
    def failed_commits(self) -> int: ...
    @property
    def checkpoints(self) -> int: ...


class CacheCounters(Protocol):
    hits: int
    misses: int
    errors: int


class UpstreamState(Protocol):
    """What a connector's guard tells at scrape time."""

    upstream: str

    @property
    def breaker_open(self) -> bool: ...
    @property
    def in_flight(self) -> int: ...


class _StateCollector(Collector):
    """Cache and upstream state read at scrape time."""

    def __init__(self) -> None:
        self.caches: dict[str, Callable[[], CacheCounters]] = {}
        self.upstreams: list[Callable[[], UpstreamState]] = []

    def collect(self) -> Iterator[Metric]:
        lookups = CounterMetricFamily(
            "hub_cache_lookups", "Connector cache lookups by cache and result.",
            labels=["cache", "result"],
        )
        ratio = GaugeMetricFamily(
            "hub_cache_hit_ratio", "Hits over hits and misses since start.", labels=["cache"]
        )
        for name, read_cache in self.caches.items():
            stats = read_cache()
            for result, value in (("hit", stats.hits), ("miss", stats.misses),
                                  ("error", stats.errors)):
                lookups.add_metric([name, result], value)
            total = stats.hits + stats.misses
            ratio.add_metric([name], stats.hits / total if total else 0.0)
        breaker = GaugeMetricFamily(
            "hub_upstream_breaker_open", "1 while the circuit breaker fails calls fast.",
            labels=["upstream"],
        )
        in_flight = GaugeMetricFamily(
            "hub_upstream_in_flight", "Calls to the source system under way.",
            labels=["upstream"],
        )
        for read_upstream in self.upstreams:
            state = read_upstream()
            breaker.add_metric([state.upstream], 1.0 if state.breaker_open else 0.0)
            in_flight.add_metric([state.upstream], state.in_flight)
        yield from (lookups, ratio, breaker, in_flight)


class _AuditCollector(Collector):
    """Reads the audit log's own counters at scrape time (no bookkeeping on the hot path)."""

    def __init__(self, stats: Callable[[], AuditCounters]) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        stats = self._stats()
        for name, value, text in (
            ("hub_audit_records", stats.records, "Audit records committed by this process."),
            ("hub_audit_commits", stats.commits, "Audit transactions (group commits)."),
            ("hub_audit_failed_commits", stats.failed_commits, "Audit commits that failed."),
            ("hub_audit_checkpoints", stats.checkpoints, "Signed checkpoints written."),
        ):
            yield CounterMetricFamily(name, text, value=value)


class HubMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "hub_graphql_requests",
            "GraphQL requests by client, root fields and outcome.",
            ["client", "root_fields", "outcome"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "hub_graphql_request_seconds",
            "GraphQL request latency, audit commit included.",
            ["outcome"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.refusals = Counter(
            "hub_refusals",
            "Requests refused before execution, by error code.",
            ["code"],
            registry=self.registry,
        )

        self.events_accepted = Counter(
            "hub_permit_events_accepted",
            "Permit change events accepted from the WMS, by kind.",
            ["kind"],
            registry=self.registry,
        )
        self.events_refused = Counter(
            "hub_permit_events_refused",
            "Permit change events refused, by error code.",
            ["code"],
            registry=self.registry,
        )
        self.subscription_events = Counter(
            "hub_subscription_events_sent",
            "Permit change events sent to WebSocket subscribers.",
            registry=self.registry,
        )

        self.upstream_calls = Histogram(
            "hub_upstream_call_seconds",
            "Guarded calls to a source system (retries included), by result: "
            "ok, error, timeout, rejected (breaker open).",
            ["upstream", "result"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.audit_commit = Histogram(
            "hub_audit_commit_seconds",
            "Audit group commits: time to commit one batch.",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.audit_batch = Histogram(
            "hub_audit_commit_batch_size",
            "Audit group commits: records per commit.",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
            registry=self.registry,
        )
        # The request counter's and latency histogram's children, by (client, root fields,
        # outcome): as many as the counter itself has.
        self._children: dict[tuple[str, str, str], tuple[Counter, Histogram]] = {}
        self._state = _StateCollector()
        self.registry.register(self._state)

    def watch_cache(self, name: str, stats: Callable[[], CacheCounters]) -> None:
        self._state.caches[name] = stats

    def watch_upstream(self, state: Callable[[], UpstreamState]) -> None:
        self._state.upstreams.append(state)

    def observe_upstream(self, upstream: str, result: str, seconds: float) -> None:
        self.upstream_calls.labels(upstream, result).observe(seconds)

    def observe_audit_commit(self, records: int, seconds: float) -> None:
        self.audit_commit.observe(seconds)
        self.audit_batch.observe(records)

    def watch_audit(self, stats: Callable[[], AuditCounters]) -> None:
        self.registry.register(_AuditCollector(stats))

    def observe(
        self,
        *,
        client: str | None,
        root_fields: str,
        outcome: str,
        seconds: float,
        refusal: str | None,
    ) -> None:
        key = (client or "-", root_fields or "-", outcome)
        children = self._children.get(key)
        if children is None:  # `labels` checks and locks on every call; once per label set here
            children = self._children[key] = (
                self.requests.labels(*key), self.latency.labels(outcome)
            )
        children[0].inc()
        children[1].observe(seconds)
        if refusal is not None:
            self.refusals.labels(refusal).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
