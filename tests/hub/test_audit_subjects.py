"""A request naming an identifier is audited under it even when nothing was found.

"Agency X asked about SSN Y and got no cards" is an access to Y: the person's data tracker
(`subjectAccessLog`) must show it, and an auditor searching by Y must find it.
"""

from __future__ import annotations

import datetime as dt

import pytest

from connectors.identifiers import make_permit_number, make_ssn
from observability.audit import AuditFilter
from tests.conftest import HubClient

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
