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
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = ["CONTENT_TYPE", "AuditCounters", "HubMetrics"]

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
        self.requests.labels(client or "-", root_fields or "-", outcome).inc()
        self.latency.labels(outcome).observe(seconds)
        if refusal is not None:
            self.refusals.labels(refusal).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
