"""GraphQL over HTTP beyond the audit suite: a query by GET passes the very gate a POST passes
and is audited alike, media types change the Content-Type and never the status, documents that
fail carry the conventional codes beside the hub's, and a GET's URL (its variables carry
identity numbers) stays out of the access log and the traces.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from hub.app import create_app
from hub.demo_clients import seed_demo_clients
from hub.settings import Settings
from observability.audit import AuditFilter
from observability.logs import JsonFormatter
from tests.conftest import HubClient, Simulators, _drop_prefix, hub_settings
from tests.simulators.servers import serve

CLIENT = "exit-entry-wuhan"
PURPOSE = "residence-permit-check"
STATUS = "query Status($n: ID!) { permit(number: $n) { number status } }"
GRAPHQL_RESPONSE = "application/graphql-response+json"


async def _headers(hub: HubClient, purpose: str = PURPOSE) -> dict[str, str]:
    return {"authorization": f"Bearer {await hub.token(CLIENT)}", "x-purpose-of-use": purpose}


def _params(query: str, variables: dict[str, Any] | None = None) -> dict[str, str]:
    params = {"query": query}
    if variables is not None:
        params["variables"] = orjson.dumps(variables).decode()
    return params


async def _records(hub: HubClient) -> list[Any]:
    page = await hub.hub.audit.search(
        AuditFilter(), 500, None, subject_view=False, today=dt.date.today()
    )
    return list(page.records)


async def test_a_query_by_get_is_answered_and_audited_as_a_post_is(
    hub: HubClient, simulators: Simulators
) -> None:
    number = simulators.dataset.samples["valid_permit"]
    headers = await _headers(hub)
    got = await hub.http.get("/graphql", params=_params(STATUS, {"n": number}), headers=headers)
    posted = await hub.graphql(CLIENT, STATUS, {"n": number}, purpose=PURPOSE)
    assert got.status_code == posted.status_code == 200
    assert got.headers["content-type"] == "application/json"
    assert got.headers["cache-control"] == "no-store"  # personal data: in no browser's cache
    assert got.json() == posted.json() and got.json()["data"]["permit"]["number"] == number
    assert got.headers["x-hub-evidence"] and got.headers["x-hub-audit-record"]
    records = {r.id: r for r in await _records(hub)}
    by_get = records[got.headers["x-hub-audit-record"]]
    by_post = records[posted.headers["x-hub-audit-record"]]
    assert (by_get.kind, by_get.outcome, by_get.subjects, by_get.operation, by_get.purpose) == (
        by_post.kind, by_post.outcome, by_post.subjects, by_post.operation, by_post.purpose
    )
    assert number in by_get.subjects and by_get.operation == "Status"


@pytest.mark.parametrize(
    ("case", "status"),
    [
        ("no token", 401),
        ("purpose not allowed", 403),
        ("field outside the scopes", 403),
        ("variables not coercible", 400),
    ],
)
async def test_a_get_is_refused_where_a_post_is_with_the_same_status_and_code(
    hub: HubClient, simulators: Simulators, case: str, status: int
) -> None:
    calls = await simulators.upstream_calls()
    headers = await _headers(hub, "marketing" if case == "purpose not allowed" else PURPOSE)
    if case == "no token":
        headers.pop("authorization")
    query = STATUS
    variables: dict[str, Any] = {"n": simulators.dataset.samples["valid_permit"]}
    if case == "field outside the scopes":
        query = "{ accessLog(first: 1) { edges { cursor } } }"
        variables = {}
    if case == "variables not coercible":
        variables = {"n": [1, 2]}
    got = await hub.http.get("/graphql", params=_params(query, variables), headers=headers)
    posted = await hub.http.post(
        "/graphql", json={"query": query, "variables": variables}, headers=headers
    )
    assert got.status_code == status and "data" not in got.json()
    assert (got.status_code, got.json()["errors"][0]["extensions"]["code"]) == (
        posted.status_code, posted.json()["errors"][0]["extensions"]["code"]
    )
    assert await simulators.upstream_calls() == calls


async def test_the_media_type_changes_the_content_type_and_never_the_status(
    hub: HubClient, simulators: Simulators
) -> None:
    number = simulators.dataset.samples["valid_permit"]
    headers = await _headers(hub)
    documents = {
        "ok": (STATUS, {"n": number}, 200, None),
        "parse": ("{ permit(", None, 400, "GRAPHQL_PARSE_FAILED"),
        "validation": ("{ nope }", None, 400, "GRAPHQL_VALIDATION_FAILED"),
        "coercion": (STATUS, {"n": None}, 400, None),
    }
    for accept, media in (
        (None, "application/json"),
        ("*/*", "application/json"),
        ("application/json", "application/json"),
        (GRAPHQL_RESPONSE, GRAPHQL_RESPONSE),
        (f"{GRAPHQL_RESPONSE}, application/json;q=0.9", GRAPHQL_RESPONSE),
        (f"{GRAPHQL_RESPONSE};q=0.5, application/json", "application/json"),
    ):
        sent = headers | ({"accept": accept} if accept else {})
        for name, (query, variables, status, graphql_code) in documents.items():
            response = await hub.http.post(
                "/graphql", json={"query": query, "variables": variables}, headers=sent
            )
            assert response.status_code == status, (accept, name, response.text)
            assert response.headers["content-type"] == media, (accept, name)
            body = response.json()
            if status != 200:
                assert "data" not in body
                extensions = body["errors"][0]["extensions"]
                assert extensions["code"] == "BAD_USER_INPUT"  # as existing clients know it
                assert extensions.get("graphqlCode") == graphql_code
    refused = await hub.http.post(
        "/graphql", json={"query": STATUS}, headers=headers | {"accept": GRAPHQL_RESPONSE,
                                                                "authorization": "Bearer x"}
    )
    assert refused.status_code == 401 and refused.headers["content-type"] == GRAPHQL_RESPONSE


@pytest.mark.parametrize(
    ("content_type", "status"),
    [("text/plain", 415), ("application/graphql", 415), ("application/json; charset=utf-8", 200)],
)
async def test_a_post_in_another_media_type_is_415(
    hub: HubClient, content_type: str, status: int
) -> None:
    response = await hub.http.post(
        "/graphql", content=b'{"query": "{ __typename }"}',
        headers=await _headers(hub) | {"content-type": content_type},
    )
    assert response.status_code == status


async def test_an_accept_header_allowing_no_json_is_406(hub: HubClient) -> None:
    response = await hub.http.post(
        "/graphql", json={"query": "{ __typename }"},
        headers=await _headers(hub) | {"accept": "text/csv, application/xml"},
    )
    assert response.status_code == 406
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_a_browser_gets_graphiql_and_a_browser_sending_a_query_gets_the_answer(
    hub: HubClient,
) -> None:
    browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    page = await hub.http.get("/graphql", headers={"accept": browser})
    assert page.status_code == 200 and "graphiql" in page.text
    asked = await hub.http.get(
        "/graphql", params=_params("{ __typename }"),
        headers=await _headers(hub) | {"accept": browser},
    )
    assert asked.status_code == 200 and asked.json() == {"data": {"__typename": "Query"}}


async def test_a_gets_url_stays_out_of_the_access_log_and_the_trace(
    simulators: Simulators, database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    number = simulators.dataset.samples["valid_permit"]
    name = next(
        p.holder.name for p in simulators.dataset.permits.values() if p.number == number
    )
    query = f'query Who($n: ID!) {{ permit(number: $n) {{ number }} }} # {name}'
    prefix = f"test:{uuid.uuid4().hex[:12]}:"
    exporter = InMemorySpanExporter()
    settings = hub_settings(simulators, database_url, tmp_path, prefix)
    settings = Settings(
        **(settings.model_dump() | {"tracing": "on", "tracing_sample_ratio": 1.0})
    )
    app = create_app(settings, span_exporter=exporter)
    caplog.set_level(logging.INFO)
    try:
        # log_config=None: uvicorn's access log reaches the root logger, as under `hub serve`
        async with serve(
            app, access_log=True, log_config=None, log_level="info"
        ) as url, httpx.AsyncClient(
            base_url=url
        ) as http:
            seeded = await seed_demo_clients(app.state.hub.auth)
            secret = next(str(c["client_secret"]) for c in seeded if c["client_id"] == CLIENT)
            token = (await http.post(
                "/oauth/token", data={"grant_type": "client_credentials"}, auth=(CLIENT, secret)
            )).json()["access_token"]
            response = await http.get(
                "/graphql", params=_params(query, {"n": number}),
                headers={"authorization": f"Bearer {token}", "x-purpose-of-use": PURPOSE},
            )
            assert response.status_code == 200, response.text
    finally:
        await _drop_prefix(prefix)
    access = [JsonFormatter().format(r) for r in caplog.records if r.name == "uvicorn.access"]
    assert any("GET /graphql?[query omitted]" in line for line in access), access
    # The server span of the GET (the hub's own spans never held the variables).
    served = [s for s in exporter.get_finished_spans() if s.kind is SpanKind.SERVER]
    assert served
    for text in (*access, *(orjson.dumps(dict(s.attributes or {})).decode() for s in served)):
        assert number not in text and name not in text
        assert "variables" not in text and "query=" not in text and "Who" not in text
