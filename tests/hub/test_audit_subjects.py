"""A request naming an identifier is audited under it even when nothing was found.

"Agency X asked about SSN Y and got no cards" is an access to Y: the person's data tracker
(`subjectAccessLog`) must show it, and an auditor searching by Y must find it.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from connectors.identifiers import make_permit_number, make_ssn
from infra.counters import RateLimit
from observability.audit import AuditFilter
from tests.conftest import HubClient, Simulators, open_hub

UNKNOWN_SSN = make_ssn("420100", 98_765_432_101)
UNKNOWN_PERMIT = make_permit_number("420100", 2024, 9_876_543)


async def _subjects_of_last(hub: HubClient) -> tuple[str, ...]:
    page = await hub.hub.audit.search(
        AuditFilter(), 50, None, subject_view=False, today=dt.date.today()
    )
    graphql = [r for r in page.records if r.kind == "graphql"]
    return tuple(graphql[0].subjects)


@pytest.mark.parametrize(
    ("client", "query", "variables", "subject"),
    [
        ("ssc-card-center-hubei", "query($s: ID!) { cards(ssn: $s) { cardNumber } }",
         {"s": UNKNOWN_SSN}, UNKNOWN_SSN),
        ("si-agency-wuhan", "query($s: ID!) { enrollment(ssn: $s) { ssn } }",
         {"s": UNKNOWN_SSN}, UNKNOWN_SSN),
        ("exit-entry-wuhan", "query($n: ID!) { permit(number: $n) { status } }",
         {"n": UNKNOWN_PERMIT}, UNKNOWN_PERMIT),
        ("exit-entry-wuhan", "query($n: [ID!]!) { permits(numbers: $n) { status } }",
         {"n": [UNKNOWN_PERMIT]}, UNKNOWN_PERMIT),
        ("si-agency-wuhan", "query($s: ID!) { foreigner(ssn: $s) { name } }",
         {"s": UNKNOWN_SSN}, UNKNOWN_SSN),
        ("si-agency-wuhan", "query($n: ID!) { foreigner(permitNumber: $n) { name } }",
         {"n": UNKNOWN_PERMIT}, UNKNOWN_PERMIT),
    ],
    ids=["cards", "enrollment", "permit", "permits", "foreigner-ssn", "foreigner-permit"],
)
async def test_an_identifier_that_finds_nothing_is_still_the_records_subject(
    hub: HubClient, client: str, query: str, variables: dict[str, object], subject: str
) -> None:
    response = await hub.graphql(client, query, variables)
    assert response.status_code == 200, response.text
    assert "errors" not in response.json()
    data = response.json()["data"]
    assert next(iter(data.values())) in (None, [], [None])  # nothing found
    assert subject in await _subjects_of_last(hub)


# ---- refusals: an auditor finds who tried to read a person's data, even when refused

FIND = "query($s: ID!) { accessLog(filter: {subject: $s}) { edges { node { outcome subjects } } } }"
REFUSED_SSN = make_ssn("420100", 12_345_678_901)
REFUSED_PERMIT = make_permit_number("420100", 2024, 1_234_567)
REFUSED_OTHER = make_permit_number("420500", 2023, 7_654_321)


async def _refused_records_of(hub: HubClient, subject: str) -> list[dict[str, object]]:
    log = await hub.graphql("auditor-hubei", FIND, {"s": subject})
    assert log.status_code == 200, log.text
    nodes = [e["node"] for e in log.json()["data"]["accessLog"]["edges"]]
    return [n for n in nodes if n["outcome"] in ("DENIED", "ERROR")]


@pytest.mark.parametrize(
    ("query", "variables", "subject", "code"),
    [
        (f'{{ enrollment(ssn: "{REFUSED_SSN}") {{ ssn }} }}', None, REFUSED_SSN, "FORBIDDEN"),
        ("query($s: ID!) { enrollment(ssn: $s) { ssn } }", {"s": REFUSED_SSN}, REFUSED_SSN,
         "FORBIDDEN"),
        ("query($n: [ID!]!) { permits(numbers: $n) { enrollment { ssn } } }",
         {"n": [REFUSED_OTHER, REFUSED_PERMIT]}, REFUSED_PERMIT, "FORBIDDEN"),
        (f'query($s: ID = "{REFUSED_SSN}") {{ enrollment(ssn: $s) {{ ssn }} }}', None,
         REFUSED_SSN, "FORBIDDEN"),
        (f'{{ permits(numbers: ["{REFUSED_OTHER}", "{REFUSED_PERMIT}"]) {{ holder {{ name }} }}'
         f' b: permits(numbers: ["{REFUSED_PERMIT}", "not-a-permit"]) {{ status }} }}',
         None, REFUSED_PERMIT, "BAD_USER_INPUT"),
        ("query($n: [ID!]!) { permits(numbers: $n) { status } }",
         {"n": [REFUSED_PERMIT] * 501}, REFUSED_PERMIT, "BAD_USER_INPUT"),
    ],
    ids=["ssn-literal", "ssn-variable", "batch-forbidden", "ssn-default", "batch-malformed",
         "batch-too-long"],
)
async def test_a_refused_request_is_found_by_the_identifiers_it_named(
    hub: HubClient, query: str, variables: dict[str, object] | None, subject: str, code: str
) -> None:
    response = await hub.graphql("exit-entry-wuhan", query, variables)
    assert response.json()["errors"][0]["extensions"]["code"] == code, response.text
    refused = await _refused_records_of(hub, subject)
    assert len(refused) == 1
    assert subject in refused[0]["subjects"]  # type: ignore[operator]


async def test_a_refused_registration_is_found_by_the_permit_in_its_input(
    hub: HubClient,
) -> None:
    query = """mutation($i: RegisterEnrollmentInput!) { registerEnrollment(input: $i) {
                 enrollment { ssn } } }"""
    variables = {"i": {"permitNumber": REFUSED_PERMIT, "region": "420100",
                       "employerCreditCode": "garbage"}}
    response = await hub.graphql("exit-entry-wuhan", query, variables)
    assert response.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    refused = await _refused_records_of(hub, REFUSED_PERMIT)
    assert len(refused) == 1
    assert refused[0]["subjects"] == [REFUSED_PERMIT]  # not the region, not the garbage


async def test_a_malformed_identifier_is_never_recorded_as_a_subject(hub: HubClient) -> None:
    malformed = REFUSED_SSN[:-1] + ("0" if REFUSED_SSN[-1] != "0" else "1")  # bad check char
    query = """query($s: ID!, $t: ID!) { a: enrollment(ssn: $s) { ssn }
                                          b: enrollment(ssn: $t) { ssn } }"""
    response = await hub.graphql("exit-entry-wuhan", query, {"s": malformed, "t": REFUSED_SSN})
    assert response.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    page = await hub.hub.audit.search(
        AuditFilter(), 50, None, subject_view=False, today=dt.date.today()
    )
    refused = [r for r in page.records if r.outcome == "DENIED"]
    assert refused[0].subjects == (REFUSED_SSN,)  # the well-formed one only


async def test_a_request_over_the_rate_is_found_by_the_identifiers_it_named(
    simulators: Simulators, database_url: str, tmp_path: Path
) -> None:
    query = "query($n: ID!) { permit(number: $n) { status } }"
    async with open_hub(simulators, database_url, tmp_path, rate_limit_per_minute=1) as client:
        hub = client.hub
        per_minute = hub.settings.rate_limit_per_minute
        hub.rate_limit = RateLimit(hub.counters, per_minute, clock=lambda: 605.0)
        await client.graphql("exit-entry-wuhan", query, {"n": REFUSED_OTHER})
        over = await client.graphql("exit-entry-wuhan", query, {"n": REFUSED_PERMIT})
        assert over.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
        refused = await _refused_records_of(client, REFUSED_PERMIT)
    assert len(refused) == 1 and refused[0]["subjects"] == [REFUSED_PERMIT]
