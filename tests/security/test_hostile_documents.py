"""Issue 6, item 7: hostile documents and HTTP input, each refused with its typed code.

Every case goes through the HTTP API with a real token and asserts: the refusal's status and
`extensions.code`, no upstream call, no leak, and (where the request reaches the GraphQL route)
exactly one new audit record and a chain that still verifies.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest

from hub.demo_clients import DEMO_AGENCIES
from observability.audit import AuditFilter
from tests.conftest import HubClient, Simulators, SqlCounter
from tests.security._leaks import assert_safe_error

CLIENT = "si-agency-wuhan"
PURPOSE = sorted(next(a for a in DEMO_AGENCIES if a.client_id == CLIENT).purposes)[0]


@dataclass(frozen=True)
class Case:
    id: str
    status: int
    code: str
    body: bytes | None = None
    json: Any = None
    content_type: str = "application/json"
    method: str = "POST"
    url: str = "/graphql"
    headers: dict[str, str] = field(default_factory=dict)
    authenticated: bool = True
    audited: bool = True  # reaches the GraphQL route (the transport's 413 does not)


def _q(query: str, variables: Any = None, **extra: Any) -> dict[str, Any]:
    return {"query": query, "variables": variables, **extra}


def _nested(levels: int) -> str:
    body = "name"
    for _ in range(levels):
        body = f"holder {{ permits {{ {body.replace('name', 'number')} }} }}"
    return f'{{ permit(number: "420100202400000018") {{ {body} }} }}'


FRAGMENT_DEPTH = """{ permit(number: "1") { ...A } }
fragment A on WorkPermit { holder { permits { ...B } } }
fragment B on WorkPermit { holder { permits { ...C } } }
fragment C on WorkPermit { holder { permits { ...D } } }
fragment D on WorkPermit { holder { permits { ...E } } }
fragment E on WorkPermit { holder { permits { number } } }"""
ALIAS_BOMB = "{" + " ".join(f"a{i}:__typename" for i in range(1000)) + "}"
PERMIT_ALIASES = "{" + " ".join(f'p{i}: permit(number: "1") {{ number }}' for i in range(31)) + "}"
CYCLE = '{ permit(number: "1") { ...A } } fragment A on WorkPermit { holder { permits { ...A } } }'
TOKEN_BOMB = "{" + " a" * 5001 + "}"
BATCH = """query($ns: [ID!]!) {
  permits(numbers: $ns) { number holder { name permits { number history { status } } } } }"""
LIGHT_BATCH = "query($ns: [ID!]!) { permits(numbers: $ns) { number } }"
ONE = "query($n: ID!) { permit(number: $n) { number status } }"
NESTED_LIST: Any = "420100202400000018"
for _ in range(200):
    NESTED_LIST = [NESTED_LIST]

TOO_COMPLEX = "QUERY_TOO_COMPLEX"
BAD = "BAD_USER_INPUT"

CASES = [
    Case("deep-nesting", 400, TOO_COMPLEX, json=_q(_nested(5))),
    Case("deep-nesting-through-fragments", 400, TOO_COMPLEX, json=_q(FRAGMENT_DEPTH)),
    Case("alias-bomb-1000", 400, TOO_COMPLEX, json=_q(ALIAS_BOMB)),
    Case("aliased-permits-31", 400, TOO_COMPLEX, json=_q(PERMIT_ALIASES)),
    Case("fragment-cycle", 400, BAD, json=_q(CYCLE)),
    Case("token-bomb", 400, TOO_COMPLEX, json=_q(TOKEN_BOMB)),
    Case(
        "document-over-16-KiB", 400, TOO_COMPLEX, json=_q("#" + "x" * 20_000 + "\n{ __typename }")
    ),
    Case(
        "body-over-256-KiB",
        413,
        BAD,
        json=_q("{ __typename }", {"pad": "x" * 300_000}),
        audited=False,
    ),
    Case(
        "batch-over-the-cost-limit",
        400,
        TOO_COMPLEX,
        json=_q(BATCH, {"ns": ["420100202400000018"] * 500}),
    ),
    Case("batch-over-500", 400, BAD, json=_q(LIGHT_BATCH, {"ns": ["420100202400000018"] * 501})),
    Case("variable-nested-200-deep", 400, BAD, json=_q(ONE, {"n": NESTED_LIST})),
    Case("batched-json-array", 400, BAD, json=[_q("{ __typename }"), _q("{ __typename }")]),
    Case("text-plain", 415, BAD, body=b'{"query": "{ __typename }"}', content_type="text/plain"),
    Case(
        "csrf-form-post",
        415,
        BAD,
        body=b"query=%7B__typename%7D",
        content_type="application/x-www-form-urlencoded",
    ),
    Case(
        "multipart",
        415,
        BAD,
        body=b'--b\r\nContent-Disposition: form-data; name="query"\r\n\r\n'
        b"{ __typename }\r\n--b--\r\n",
        content_type="multipart/form-data; boundary=b",
    ),
    Case(
        "get-with-mutation",
        405,
        BAD,
        method="GET",
        url="/graphql?query=mutation%7BregisterEnrollment%7D",
    ),
    Case(
        "get-with-named-mutation",
        405,
        BAD,
        method="GET",
        url="/graphql?query=query%20A%7B__typename%7D%20mutation%20B%7Bx%7D&operationName=B",
    ),
    Case(
        "get-variables-not-json", 400, BAD, method="GET", url="/graphql?query=%7Bx%7D&variables=%7B"
    ),
    Case(
        "accept-neither-json", 406, BAD, json=_q("{ __typename }"), headers={"accept": "text/csv"}
    ),
    Case("invalid-json", 400, BAD, body=b'{"query": "{ __typename }"'),
    Case("json-null", 400, BAD, body=b"null"),
    Case("json-number", 400, BAD, body=b"42"),
    Case("json-string", 400, BAD, body=b'"{ __typename }"'),
    Case("empty-body", 400, BAD, body=b""),
    Case("query-not-a-string", 400, BAD, json={"query": 42}),
    Case("query-a-list", 400, BAD, json={"query": ["{ __typename }"]}),
    Case("query-missing", 400, BAD, json={"variables": {}}),
    Case("variables-a-list", 400, BAD, json=_q("{ __typename }", [1, 2])),
    Case("variables-a-string", 400, BAD, json=_q("{ __typename }", '{"n": 1}')),
    Case("operation-name-not-a-string", 400, BAD, json=_q("{ __typename }", operationName=1)),
    Case("unknown-operation-name", 400, BAD, json=_q("query A { __typename }", operationName="B")),
    Case("unicode-field-name", 400, BAD, json=_q('{ pérmit(number: "1") { number } }')),
    Case("nul-byte-in-document", 400, BAD, json=_q('{ permit(number: "1\x00") { number } }')),
    Case("nul-byte-in-identifier", 400, BAD, json=_q(ONE, {"n": "42010020240000001\x00"})),
    Case(
        "fullwidth-digits-in-identifier",
        400,
        BAD,
        json=_q(ONE, {"n": "\uff14\uff12\uff10\uff11\uff10\uff10" + "2024" + "0" * 7 + "\uff18"}),
    ),
    Case("rtl-override-in-identifier", 400, BAD, json=_q(ONE, {"n": "\u202e420100202400000018"})),
    Case(
        "introspection-mixed-with-data",
        400,
        BAD,
        json=_q('{ __schema { queryType { name } } permit(number: "1") { number } }'),
    ),
    Case(
        "anonymous-schema",
        401,
        "UNAUTHENTICATED",
        json=_q("{ __schema { types { name } } }"),
        authenticated=False,
    ),
    Case(
        "20-KB-authorization",
        401,
        "UNAUTHENTICATED",
        json=_q("{ __typename }"),
        headers={"authorization": "Bearer " + "A" * 20_000},
        authenticated=False,
    ),
    Case(
        "20-KB-purpose",
        403,
        "PURPOSE_REQUIRED",
        json=_q("{ __typename }"),
        headers={"x-purpose-of-use": "p" * 20_000},
    ),
    Case(
        "duplicated-directives",
        400,
        BAD,
        json=_q("{ __typename @include(if: true) @include(if: true) }"),
    ),
    Case("subscription-over-post", 400, BAD, json=_q("subscription { permitStatusChanged }")),
]


async def _records(hub: HubClient) -> int:
    page = await hub.hub.audit.search(
        AuditFilter(), 500, None, subject_view=False, today=dt.date.today()
    )
    return len(page.records)


async def _send(hub: HubClient, case: Case) -> Any:
    headers = {"content-type": case.content_type}
    if case.authenticated:
        headers["authorization"] = f"Bearer {await hub.token(CLIENT)}"
    headers["x-purpose-of-use"] = PURPOSE
    headers.update(case.headers)
    body = case.body if case.body is not None else orjson.dumps(case.json)
    return await hub.http.request(case.method, case.url, content=body, headers=headers)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
async def test_hostile_request_is_refused_with_its_code_and_nothing_runs(
    hub: HubClient, simulators: Simulators, case: Case
) -> None:
    await hub.token(CLIENT)
    sql = SqlCounter(hub.hub)
    calls, records = await simulators.upstream_calls(), await _records(hub)
    response = await _send(hub, case)
    code = assert_safe_error(response, simulators.wms_url, simulators.cards_url)
    assert (response.status_code, code) == (case.status, case.code), response.text[:300]
    assert "data" not in response.json() or response.json()["data"] is None
    assert await simulators.upstream_calls() == calls
    assert sql.counts == {}
    assert await _records(hub) == records + (1 if case.audited else 0)
    assert (await hub.hub.audit.verify()).ok


def test_there_are_at_least_25_hostile_cases() -> None:
    assert len(CASES) >= 25 and len({c.id for c in CASES}) == len(CASES)


SQL_META = [
    "' OR '1'='1",
    "1; DROP TABLE enrollments; --",
    '" OR 1=1 --',
    "%' UNION SELECT 1 --",
    "420100'--",
    "\\x27; SELECT pg_sleep(5)",
]
ID_ARGUMENTS = [
    ("permit(number: $v) { number }", "ID!"),
    ("permits(numbers: [$v]) { number }", "ID!"),
    ("foreigner(permitNumber: $v) { name }", "ID"),
    ("foreigner(ssn: $v) { name }", "ID"),
    ("enrollment(ssn: $v) { ssn }", "ID!"),
    ("cards(ssn: $v) { kind }", "ID!"),
]


@pytest.mark.parametrize("value", SQL_META)
async def test_sql_meta_characters_in_every_identifier_argument_are_refused(
    hub: HubClient, simulators: Simulators, value: str
) -> None:
    sql = SqlCounter(hub.hub)
    calls = await simulators.upstream_calls()
    for selection, kind in ID_ARGUMENTS:
        query = f"query($v: {kind}) {{ {selection} }}"
        for variables, text in (
            ({"v": value}, query),
            (None, query.replace("$v", orjson.dumps(value).decode()).replace(f"($v: {kind})", "")),
        ):
            response = await hub.graphql(
                "ssc-card-center-hubei" if "cards" in selection else CLIENT, text, variables
            )
            code = assert_safe_error(response, simulators.wms_url, simulators.cards_url)
            assert (response.status_code, code) in ((400, "BAD_USER_INPUT"), (403, "FORBIDDEN"))
    assert await simulators.upstream_calls() == calls
    assert sql.counts == {}
    assert (await hub.hub.audit.verify()).ok


@pytest.mark.parametrize(
    "name", ["clientId", "agency", "purpose", "operation", "traceId", "subject"]
)
async def test_sql_meta_characters_in_audit_filters_match_nothing(
    hub: HubClient, name: str
) -> None:
    await hub.graphql(CLIENT, ONE, {"n": "420100202400000018"})
    kind = "ID" if name == "subject" else "String"
    query = (
        f"query($v: {kind}) {{ accessLog(filter: {{{name}: $v}}) {{ edges {{ node {{ id }} }} }} }}"
    )
    for value in SQL_META:
        response = await hub.graphql("auditor-hubei", query, {"v": value})
        assert response.status_code in (200, 400), response.text[:300]
        if response.status_code == 200:
            body = response.json()
            if "errors" in body:  # a malformed subject is refused by the resolver, before SQL
                assert body["data"] is None
                assert assert_safe_error(response) == "BAD_USER_INPUT"
            else:
                assert body["data"]["accessLog"]["edges"] == []
        else:
            assert assert_safe_error(response) == "BAD_USER_INPUT"
    assert (await hub.hub.audit.verify()).ok


async def test_huge_variables_object_is_ignored_not_executed(
    hub: HubClient, simulators: Simulators
) -> None:
    variables = {f"v{i}": "x" * 100 for i in range(2000)}  # ~220 KB, under the body limit
    calls = await simulators.upstream_calls()
    response = await hub.graphql(CLIENT, "{ __typename }", variables)
    assert response.status_code == 200 and response.json() == {"data": {"__typename": "Query"}}
    assert await simulators.upstream_calls() == calls


async def test_an_auditor_cannot_ask_for_a_huge_page(hub: HubClient) -> None:
    query = "query($n: Int!) { accessLog(first: $n) { edges { node { id fields subjects } } } }"
    response = await hub.graphql("auditor-hubei", query, {"n": 10_000_000})
    assert response.status_code == 400
    assert assert_safe_error(response) == "QUERY_TOO_COMPLEX"
    assert "max_cost" in response.json()["errors"][0]["message"]
