"""Issue 7, item 1: one trace from the agency's request through every source system.

The hub exports to an in-memory exporter; the client sends its own `traceparent`. One
`permits` query touching the WMS, an agency database and the card system must give one trace
(the client's) with the expected spans and parents, the same trace id in its audit record,
and the simulators must have received that trace id.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from observability.audit import AuditFilter
from tests.conftest import HubClient, Simulators, open_hub

QUERY = """query Batch($n: [ID!]!) {
  permits(numbers: $n) { number status enrollment { ssn } cards { status } } }"""
CLIENT = "ssc-card-center-hubei"


@pytest.fixture
async def traced(
    simulators: Simulators, database_url: str, tmp_path: Path
) -> AsyncIterator[tuple[HubClient, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    async with open_hub(
        simulators, database_url, tmp_path, span_exporter=exporter, tracing="on",
        tracing_sample_ratio=1.0,
    ) as client:
        await client.token(CLIENT)
        exporter.clear()  # the token request's spans are another trace
        yield client, exporter


def _by_name(spans: tuple[ReadableSpan, ...], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


def _one(spans: tuple[ReadableSpan, ...], name: str) -> ReadableSpan:
    found = _by_name(spans, name)
    assert len(found) == 1, (name, [s.name for s in spans])
    return found[0]


def _parent_of(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


async def test_one_query_across_three_systems_is_one_trace_with_its_audit_record(
    traced: tuple[HubClient, InMemorySpanExporter], simulators: Simulators
) -> None:
    hub, exporter = traced
    trace_id, caller_span = secrets.token_hex(16), secrets.token_hex(8)
    numbers = [simulators.dataset.samples["enrolled_permit"]]

    response = await hub.graphql(
        CLIENT, QUERY, {"n": numbers},
        headers={"traceparent": f"00-{trace_id}-{caller_span}-01"},
    )

    assert response.status_code == 200 and "errors" not in response.json()
    spans = exporter.get_finished_spans()
    assert {format(s.context.trace_id, "032x") for s in spans} == {trace_id}
    server = next(s for s in spans if s.name.startswith("POST /graphql"))
    assert _parent_of(server) == int(caller_span, 16)  # the client's span is the parent

    graphql = _one(spans, "graphql Batch")
    assert _parent_of(graphql) == server.context.span_id
    attributes = dict(graphql.attributes or {})
    assert attributes["graphql.operation.name"] == "Batch"
    assert attributes["hub.client_id"] == CLIENT
    assert str(attributes["graphql.document.hash"]).startswith("sha256:")
    assert not any(numbers[0] in str(v) for s in spans for v in (s.attributes or {}).values())

    cache = _one(spans, "cache.permits")
    assert _parent_of(cache) == graphql.context.span_id
    assert dict(cache.attributes or {})["hub.cache.misses"] == 1
    wms = _one(spans, "upstream wms")
    assert _parent_of(wms) == cache.context.span_id
    region = simulators.dataset.permits[numbers[0]].work_location
    agency = _one(spans, f"upstream agency-{region}")
    cards = _one(spans, "upstream cards")
    assert _parent_of(agency) == _parent_of(cards) == graphql.context.span_id
    http_calls = [s for s in spans if _parent_of(s) in (wms.context.span_id,
                                                         cards.context.span_id)]
    assert len(http_calls) == 2  # one HTTP client span under each HTTP upstream
    audit = _one(spans, "audit.append")
    assert _parent_of(audit) == server.context.span_id

    page = await hub.hub.audit.search(
        AuditFilter(client_id=CLIENT), 1, None, subject_view=False, today=dt.date.today()
    )
    assert page.records[0].trace_id == trace_id
    for url in (simulators.wms_url, simulators.cards_url):
        received = (await simulators.stats(url))["traceparents"]
        assert any(tp.split("-")[1] == trace_id for tp in received), url


async def test_without_a_traceparent_the_hub_begins_a_trace_and_errors_carry_its_id(
    traced: tuple[HubClient, InMemorySpanExporter],
) -> None:
    hub, exporter = traced
    response = await hub.graphql(CLIENT, "query { permit(number: \"bad\") { status } }")
    assert response.status_code == 400
    trace_id = response.json()["errors"][0]["extensions"]["traceId"]
    assert {format(s.context.trace_id, "032x") for s in exporter.get_finished_spans()} == {
        trace_id
    }


async def test_with_tracing_off_nothing_is_recorded_but_the_trace_id_still_flows(
    simulators: Simulators, hub: HubClient
) -> None:
    trace_id = secrets.token_hex(16)
    response = await hub.graphql(
        CLIENT, QUERY, {"n": [simulators.dataset.samples["enrolled_permit"]]},
        headers={"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"},
    )
    assert response.status_code == 200
    page = await hub.hub.audit.search(
        AuditFilter(client_id=CLIENT), 1, None, subject_view=False, today=dt.date.today()
    )
    assert page.records[0].trace_id == trace_id
    received = (await simulators.stats(simulators.wms_url))["traceparents"]
    assert any(tp.split("-")[1] == trace_id for tp in received)


async def test_with_tracing_off_a_request_without_traceparent_has_one_id_throughout(
    simulators: Simulators, hub: HubClient
) -> None:
    numbers = sorted(simulators.dataset.permits)[-3:]  # not read by the other tests here
    response = await hub.graphql(CLIENT, QUERY, {"n": numbers})
    assert response.status_code == 200
    page = await hub.hub.audit.search(
        AuditFilter(client_id=CLIENT), 1, None, subject_view=False, today=dt.date.today()
    )
    trace_id = page.records[0].trace_id
    received = (await simulators.stats(simulators.wms_url))["traceparents"]
    assert any(tp.split("-")[1] == trace_id for tp in received)


async def test_the_server_span_names_the_route_and_status_and_never_the_query_string(
    traced: tuple[HubClient, InMemorySpanExporter], simulators: Simulators
) -> None:
    hub, exporter = traced
    number = simulators.dataset.samples["valid_permit"]
    await hub.http.get(f"/graphql?query=x&number={number}")
    await hub.http.get("/healthz")
    spans = exporter.get_finished_spans()
    server = _one(spans, "GET /graphql")
    attributes = dict(server.attributes or {})
    assert server.kind is SpanKind.SERVER
    assert attributes["http.request.method"] == "GET" and attributes["url.path"] == "/graphql"
    assert isinstance(attributes["http.response.status_code"], int)
    assert not any(number in str(v) for s in spans for v in (s.attributes or {}).values())
    assert not [s for s in spans if "healthz" in s.name]  # the probes' paths get no span


async def test_new_traces_are_sampled_at_the_ratio_and_a_sampled_caller_is_followed(
    simulators: Simulators, database_url: str, tmp_path: Path
) -> None:
    exporter = InMemorySpanExporter()
    async with open_hub(
        simulators, database_url, tmp_path, span_exporter=exporter, tracing="on",
        tracing_sample_ratio=0.0,
    ) as hub:
        await hub.token(CLIENT)
        unsampled = await hub.graphql(CLIENT, "query { permit(number: \"bad\") { status } }")
        assert exporter.get_finished_spans() == ()
        trace_id = secrets.token_hex(16)
        await hub.graphql(
            CLIENT, QUERY, {"n": [simulators.dataset.samples["enrolled_permit"]]},
            headers={"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"},
        )
    # Not sampled, the request still has a trace id for its errors and audit record.
    assert len(unsampled.json()["errors"][0]["extensions"]["traceId"]) == 32
    assert {format(s.context.trace_id, "032x") for s in exporter.get_finished_spans()} == {
        trace_id
    }
