"""Issue 3: each agency reads exactly the fields its scopes grant, refused before any upstream call.

The expected grants below are written from the scopes agencies were given, independently of
`schema.policy`, so a mistake in the policy table shows up here as a mismatch. A field its
scopes grant is still refused (PURPOSE_NOT_ALLOWED) when none of the agency's purposes covers
the root field that reaches it (issue 18).
"""

from __future__ import annotations

import asyncio

import httpx
import pytest
from graphql import parse

from hub.demo_clients import DEMO_AGENCIES, DEMO_PURPOSES
from schema import build_schema
from schema.purposes import root_fields
from tests.conftest import HubClient, Simulators, SqlCounter
from tests.hub.rows import enrolled_row

# The agencies' contract, scope by scope; then the fields the hub adds, with the scope they need.
GRANTS = {
    "permit:validity": "WorkPermit.number WorkPermit.status WorkPermit.validFrom "
    "WorkPermit.validUntil WorkPermit.isValid WorkPermit.medium Query.permit Query.permits "
    "Query.verifyPermitQr Foreigner.permits",
    "permit:holder": "WorkPermit.holder Foreigner.name Foreigner.nationality Foreigner.id",
    "permit:detail": "WorkPermit.employer WorkPermit.category WorkPermit.position "
    "WorkPermit.workLocation WorkPermit.notificationLetterNumber WorkPermit.history "
    "Employer.creditCode Employer.name Employer.region",
    "person:identity": "Foreigner.passportNumber Foreigner.dateOfBirth Foreigner.gender "
    "Query.foreigner",
    "enrollment:read": "WorkPermit.enrollment Foreigner.enrollments Query.enrollment "
    "Enrollment.ssn Enrollment.permitNumber Enrollment.region Enrollment.status "
    "Enrollment.enrolledOn Enrollment.employerCreditCode Enrollment.permit Enrollment.cards",
    "card:status": "SocialSecurityCard.kind SocialSecurityCard.status SocialSecurityCard.issuedOn "
    "SocialSecurityCard.region WorkPermit.cards Query.cards",
    "card:read": "SocialSecurityCard.cardNumber SocialSecurityCard.channel "
    "SocialSecurityCard.history SocialSecurityCard.ssn",
    "audit:read": "Query.accessLog",
    "audit:subject": "Query.subjectAccessLog",
}
NEEDS = {field: scope for scope, fields in GRANTS.items() for field in fields.split()}

# How to reach a field of each type, and the scopes that path itself needs.
PATHS = {
    "Query": ("{}", set()),
    "WorkPermit": ("permit(number: $n) {{ {} }}", {"permit:validity"}),
    "Foreigner": ("permit(number: $n) {{ holder {{ {} }} }}", {"permit:validity", "permit:holder"}),
    "Employer": (
        "permit(number: $n) {{ employer {{ {} }} }}",
        {"permit:validity", "permit:detail"},
    ),
    "PermitEvent": (
        "permit(number: $n) {{ history {{ {} }} }}",
        {"permit:validity", "permit:detail"},
    ),
    "Enrollment": ("enrollment(ssn: $s) {{ {} }}", {"enrollment:read"}),
    "SocialSecurityCard": ("cards(ssn: $s) {{ {} }}", {"card:status"}),
    "CardStatusChange": ("cards(ssn: $s) {{ history {{ {} }} }}", {"card:status", "card:read"}),
    "Region": ("cards(ssn: $s) {{ region {{ {} }} }}", {"card:status"}),
    "QrVerification": ('verifyPermitQr(payload: "garbage") {{ {} }}', {"permit:validity"}),
}
ROOT_CALLS = {
    "permit": "permit(number: $n)",
    "permits": "permits(numbers: [$n])",
    "foreigner": "foreigner(permitNumber: $n)",
    "enrollment": "enrollment(ssn: $s)",
    "cards": "cards(ssn: $s)",
    "subjectAccessLog": "subjectAccessLog(subject: $n)",
    "verifyPermitQr": 'verifyPermitQr(payload: "garbage")',
}
SCHEMA = build_schema()._schema


def _cases() -> list[tuple[str, str]]:
    # Not federation's `_service` and `_entities`: tests/hub/test_federation.py holds them.
    return [
        (type_name, field)
        for type_name in PATHS
        for field in SCHEMA.type_map[type_name].fields  # type: ignore[attr-defined]
        if not field.startswith("_")
    ]


def _document(type_name: str, field: str) -> str:
    definition = SCHEMA.type_map[type_name].fields[field]  # type: ignore[attr-defined]
    leaf = ROOT_CALLS.get(field, field) if type_name == "Query" else field
    if not hasattr(definition.type, "of_type") and not hasattr(definition.type, "fields"):
        selection = leaf
    else:
        selection = f"{leaf} {{ __typename }}" if _is_object(definition.type) else leaf
    path, _ = PATHS[type_name]
    body = path.format(selection)
    declared = ", ".join(f"${v}: ID!" for v in ("n", "s") if f"${v}" in body)
    return (f"query({declared}) " if declared else "query ") + "{ " + body + " }"


def _is_object(graphql_type: object) -> bool:
    while hasattr(graphql_type, "of_type"):
        graphql_type = graphql_type.of_type
    return hasattr(graphql_type, "fields")


def _expected(type_name: str, field: str, scopes: frozenset[str]) -> bool:
    _, path_needs = PATHS[type_name]
    need = NEEDS.get(f"{type_name}.{field}")
    value_types = ("Region", "PermitEvent", "CardStatusChange", "QrVerification")
    if need is None and type_name in value_types:
        need_set = set()  # value types: readable wherever the field leading to them is
    elif need is None:
        return False  # deny by default
    else:
        need_set = {need}
    return (path_needs | need_set) <= scopes


@pytest.mark.parametrize("agency", DEMO_AGENCIES, ids=lambda a: a.client_id)
async def test_every_field_is_allowed_exactly_where_the_design_grants_it(
    hub: HubClient, simulators: Simulators, agency: object
) -> None:
    client_id, scopes = agency.client_id, agency.scopes  # type: ignore[attr-defined]
    # A row in the client's jurisdiction: this test is about scopes (rows: test_row_binding).
    row = enrolled_row(simulators.dataset, agency.jurisdiction, inside=True)  # type: ignore[attr-defined]
    assert row is not None
    variables = {"n": row.permit, "s": row.ssn}
    sql = SqlCounter(hub.hub)
    in_flight = asyncio.Semaphore(16)

    async def ask(type_name: str, field: str) -> tuple[str, httpx.Response]:
        document = _document(type_name, field)
        used = {k: v for k, v in variables.items() if f"${k}" in document}
        async with in_flight:
            return f"{type_name}.{field}", await hub.graphql(client_id, document, used)

    purposes = agency.purposes  # type: ignore[attr-defined]
    covered = frozenset[str]().union(*(DEMO_PURPOSES[p] for p in purposes))

    def in_purpose(case: tuple[str, str]) -> bool:
        return root_fields(parse(_document(*case)), None) <= covered

    cases = _cases()
    refused = [case for case in cases if not _expected(*case, scopes)]
    outside = [case for case in cases if _expected(*case, scopes) and not in_purpose(case)]
    granted = [case for case in cases if _expected(*case, scopes) and in_purpose(case)]
    mismatches = []
    # Every refused document together, then the upstream and SQL counts: unchanged totals
    # mean that not one of them reached a source system (many at once: the suite's time).
    before, sql_before = await simulators.upstream_calls(), sum(sql.counts.values())
    for name, response in await asyncio.gather(*(ask(*case) for case in refused)):
        if response.status_code != 403:
            mismatches.append((name, response.status_code, response.text[:200]))
            continue
        body = response.json()
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN", name
        assert body["errors"][0]["extensions"]["denied"], name
        assert "data" not in body, name
    for name, response in await asyncio.gather(*(ask(*case) for case in outside)):
        errors = response.json().get("errors") or [{"extensions": {}}]
        if (response.status_code, errors[0]["extensions"].get("code")) != (
            403, "PURPOSE_NOT_ALLOWED"
        ):
            mismatches.append((name, response.status_code, response.text[:200]))
    assert await simulators.upstream_calls() == before
    assert sum(sql.counts.values()) == sql_before
    for name, response in await asyncio.gather(*(ask(*case) for case in granted)):
        if response.status_code != 200:
            mismatches.append((name, response.status_code, response.text[:200]))
            continue
        assert "errors" not in response.json(), f"{name}: {response.text[:300]}"
    assert cases
    assert mismatches == []


async def test_public_security_cannot_see_the_ssn(hub: HubClient, simulators: Simulators) -> None:
    permit = simulators.dataset.samples["enrolled_permit"]
    response = await hub.graphql(
        "exit-entry-wuhan",
        "query($n: ID!) { permit(number: $n) { status enrollment { ssn } } }",
        {"n": permit},
    )
    assert response.status_code == 403
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "FORBIDDEN"
    assert error["extensions"]["denied"] == ["permit.enrollment", "permit.enrollment.ssn"]


@pytest.mark.parametrize(
    "document",
    [
        # a fragment, an inline fragment, an alias, and a field under @skip(if: true)
        "query($n: ID!) { permit(number: $n) { ...F } } "
        "fragment F on WorkPermit { enrollment { ssn } }",
        "query($n: ID!) { permit(number: $n) { ... on WorkPermit { holder { passportNumber } } } }",
        "query($n: ID!) { p: permit(number: $n) { validity: status e: enrollment { s: ssn } } }",
        "query($n: ID!, $x: Boolean = true) { permit(number: $n) { status "
        "enrollment @skip(if: $x) { ssn } } }",
        "query Mine($n: ID!) { permit(number: $n) { status } } "
        'query Other { enrollment(ssn: "1") { ssn } }',
    ],
    ids=["fragment", "inline-fragment", "alias", "skipped", "second-operation"],
)
async def test_no_document_shape_smuggles_a_field_past_the_policy(
    hub: HubClient, simulators: Simulators, document: str
) -> None:
    before = await simulators.upstream_calls()
    response = await hub.http.post(
        "/graphql",
        json={
            "query": document,
            "variables": {"n": simulators.dataset.samples["valid_permit"]},
            "operationName": "Mine" if "Mine" in document else None,
        },
        headers={
            "authorization": f"Bearer {await hub.token('exit-entry-wuhan')}",
            "x-purpose-of-use": "residence-permit-check",
        },
    )
    assert response.status_code == 403, response.text
    assert response.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert await simulators.upstream_calls() == before


INTROSPECT = "{ __schema { queryType { fields { name } } types { name fields { name } } } }"


async def test_introspection_shows_each_agency_only_what_it_may_select(hub: HubClient) -> None:
    response = await hub.graphql("exit-entry-wuhan", INTROSPECT)
    schema = response.json()["data"]["__schema"]
    roots = {f["name"] for f in schema["queryType"]["fields"]}
    assert roots == {"permit", "permits", "cards", "verifyPermitQr"}
    types = {t["name"]: {f["name"] for f in t["fields"] or []} for t in schema["types"]}
    assert "Enrollment" not in types and "Employer" not in types
    assert "passportNumber" not in types["Foreigner"]
    assert "ssn" not in types["SocialSecurityCard"]
    auditor = await hub.graphql("si-agency-wuhan", INTROSPECT)
    assert "enrollment" in {
        f["name"] for f in auditor.json()["data"]["__schema"]["queryType"]["fields"]
    }


async def test_anonymous_introspection_is_refused(hub: HubClient) -> None:
    response = await hub.http.post("/graphql", json={"query": INTROSPECT})
    assert response.status_code == 401
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert "data" not in response.json()


@pytest.mark.parametrize("purpose", [None, "", "curiosity", "audit"])
async def test_a_missing_or_unregistered_purpose_is_refused(
    hub: HubClient, simulators: Simulators, purpose: str | None
) -> None:
    headers = {"authorization": f"Bearer {await hub.token('exit-entry-wuhan')}"}
    if purpose is not None:
        headers["x-purpose-of-use"] = purpose
    before = await simulators.upstream_calls()
    response = await hub.http.post("/graphql", json={"query": "{ __typename }"}, headers=headers)
    assert response.json()["errors"][0]["extensions"]["code"] == "PURPOSE_REQUIRED"
    assert await simulators.upstream_calls() == before


async def test_curl_flow_of_the_readme_token_then_query(
    hub: HubClient, simulators: Simulators
) -> None:
    response = await hub.http.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "exit-entry-wuhan",
            "client_secret": hub.secrets["exit-entry-wuhan"],
        },
    )
    token = response.json()["access_token"]
    assert response.json()["token_type"].lower() == "bearer"
    answer = await hub.http.post(
        "/graphql",
        json={
            "query": "query($n: ID!) { permit(number: $n) { status isValid } }",
            "variables": {"n": simulators.dataset.samples["valid_permit"]},
        },
        headers={"authorization": f"Bearer {token}", "x-purpose-of-use": "residence-permit-check"},
    )
    assert answer.json() == {"data": {"permit": {"status": "VALID", "isValid": True}}}
