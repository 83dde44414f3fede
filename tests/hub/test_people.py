"""People behind requests, over real HTTP with the simulated identity providers.

Officers: a purpose marked `needs_officer` (the demo's `investigation`) runs only for an
officer's exchanged token naming a case (`X-Case-Reference`); the audit record names the
officer and the case, an auditor finds it by them, and the data tracker shows neither.

Foreigners (the e-SSC app's person tokens): `myAccessLog` shows the person which agency looked
at their own data, when and why, and nothing of anyone else's (their own rows:
tests/hub/test_self_rows.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import HubClient, Simulators, demo_identity_providers, open_hub

EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
JWT_TYPE = "urn:ietf:params:oauth:token-type:jwt"
CASE_FILE = "query($n: ID!) { permit(number: $n) { number holder { name } } }"
AUDIT = """query($f: AccessLogFilter) { accessLog(filter: $f, first: 20) { edges { node {
    clientId purpose outcome errorCodes actor actorKind caseReference subjects } } } }"""


@dataclass
class Desk:
    hub: HubClient
    idp: httpx.AsyncClient
    permit: str
    holders: dict[str, str]  # permit number -> its holder's name

    async def foreigner_token(self, permit: str) -> str:
        """The holder of `permit`, verified by the e-SSC app, with the app's person token."""
        verified = await self.idp.post(
            "/essc/assertion", json={"permitNumber": permit, "name": self.holders[permit]})
        assert verified.status_code == 200, verified.text
        response = await self.hub.http.post(
            "/oauth/token",
            data={"grant_type": EXCHANGE, "subject_token": verified.json()["assertion"],
                  "subject_token_type": JWT_TYPE},
            auth=("essc-app", self.hub.secrets["essc-app"]),
        )
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])

    async def as_person(self, token: str, query: str, **variables: Any) -> httpx.Response:
        return await self.hub.http.post(
            "/graphql", json={"query": query, "variables": variables},
            headers={"Authorization": f"Bearer {token}", "X-Purpose-Of-Use": "self-service"},
        )

    async def officer_token(self, officer: str = "PS-0001") -> str:
        assertion = await self.idp.post(
            "/officers/assertion", json={"client_id": "exit-entry-wuhan", "officer": officer})
        assert assertion.status_code == 200, assertion.text
        response = await self.hub.http.post(
            "/oauth/token",
            data={"grant_type": EXCHANGE, "subject_token": assertion.json()["assertion"],
                  "subject_token_type": JWT_TYPE},
            auth=("exit-entry-wuhan", self.hub.secrets["exit-entry-wuhan"]),
        )
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])

    async def investigate(self, token: str, **headers: Any) -> httpx.Response:
        return await self.hub.http.post(
            "/graphql", json={"query": CASE_FILE, "variables": {"n": self.permit}},
            headers={"Authorization": f"Bearer {token}", "X-Purpose-Of-Use": "investigation",
                     **headers},
        )

    async def audit(self, **where: Any) -> list[dict[str, Any]]:
        response = await self.hub.graphql("auditor-hubei", AUDIT, {"f": where}, purpose="audit")
        assert response.status_code == 200, response.text
        return [edge["node"] for edge in response.json()["data"]["accessLog"]["edges"]]


@pytest.fixture
async def desk(
    simulators: Simulators, database_url: str, tmp_path: Path
) -> AsyncIterator[Desk]:
    dataset = simulators.dataset
    permit = next(p.number for p in dataset.permits.values()
                  if p.work_location == "420100" and p.is_valid_on(dataset.today))
    async with open_hub(simulators, database_url, tmp_path) as hub, demo_identity_providers(
        hub.hub.auth, dataset
    ) as (_, _, idp):
        holders = {n: p.holder.name for n, p in dataset.permits.items()}
        yield Desk(hub, idp, permit, holders)


def _code(response: httpx.Response) -> str:
    return str(response.json()["errors"][0]["extensions"]["code"])


async def test_the_agency_system_alone_cannot_investigate(desk: Desk) -> None:
    token = await desk.hub.token("exit-entry-wuhan")

    response = await desk.investigate(token, **{"X-Case-Reference": "WH-2026-0001"})

    assert response.status_code == 403, response.text
    assert _code(response) == "OFFICER_REQUIRED"
    assert "data" not in response.json()
    refused = await desk.audit(purpose="investigation", clientId="exit-entry-wuhan")
    assert [(r["outcome"], r["errorCodes"], r["actorKind"]) for r in refused] == [
        ("DENIED", ["OFFICER_REQUIRED"], "SYSTEM")
    ]
    assert refused[0]["subjects"] == [desk.permit]  # who tried to read whom, all the same


@pytest.mark.parametrize(
    "case", [None, b"", b"   ", b"x" * 65, "WH\u00a02026".encode("latin-1"), b"WH\t1"]
)
async def test_an_officer_must_name_a_case(desk: Desk, case: bytes | None) -> None:
    token = await desk.officer_token()
    headers: dict[str, Any] = {} if case is None else {"X-Case-Reference": case}

    response = await desk.investigate(token, **headers)

    assert response.status_code == 403, response.text
    assert _code(response) == "CASE_REFERENCE_REQUIRED"
    assert "data" not in response.json()
    recorded = await desk.audit(actor="PS-0001")
    assert [(r["outcome"], r["caseReference"]) for r in recorded] == [("DENIED", None)]


async def test_an_officer_with_a_case_reads_the_file_and_is_recorded_by_name(
    desk: Desk,
) -> None:
    token = await desk.officer_token("PS-0001")

    response = await desk.investigate(token, **{"X-Case-Reference": " WH-2026-0042 "})

    assert response.status_code == 200, response.text
    assert response.json()["data"]["permit"]["number"] == desk.permit
    found = await desk.audit(actor="PS-0001")
    assert [(r["outcome"], r["actorKind"], r["caseReference"], r["purpose"]) for r in found] == [
        ("OK", "OFFICER", "WH-2026-0042", "investigation")
    ]
    assert await desk.audit(caseReference="WH-2026-0042") == found
    assert await desk.audit(actorKind="OFFICER") == found
    assert await desk.audit(actor="PS-0002") == []
    # The person's data tracker shows the agency, the time and the purpose, never the officer.
    tracker = await desk.hub.graphql(
        "auditor-hubei",
        "query($s: ID!) { subjectAccessLog(subject: $s) { edges { node { agency purpose } } } }",
        {"s": desk.permit}, purpose="audit",
    )
    assert tracker.status_code == 200, tracker.text
    rows = [e["node"] for e in tracker.json()["data"]["subjectAccessLog"]["edges"]]
    assert {"agency": "Wuhan Exit-Entry Administration", "purpose": "investigation"} in rows
    asked = await desk.hub.graphql(
        "auditor-hubei",
        "query($s: ID!) { subjectAccessLog(subject: $s) { edges { node { actor } } } }",
        {"s": desk.permit}, purpose="audit",
    )
    assert "PS-0001" not in asked.text


async def test_a_purpose_without_officers_records_a_case_if_one_is_named(desk: Desk) -> None:
    token = await desk.hub.token("exit-entry-wuhan")
    response = await desk.hub.http.post(
        "/graphql",
        json={"query": "query($n: ID!) { permit(number: $n) { isValid } }",
              "variables": {"n": desk.permit}},
        headers={"Authorization": f"Bearer {token}",
                 "X-Purpose-Of-Use": "residence-permit-check", "X-Case-Reference": "CHK-7"},
    )
    assert response.status_code == 200, response.text
    found = await desk.audit(caseReference="CHK-7")
    assert [(r["actor"], r["actorKind"], r["outcome"]) for r in found] == [
        (None, "SYSTEM", "OK")
    ]


MY_LOG = "{ myAccessLog { entries { agency purpose time } hasNextPage } }"


async def test_a_foreigner_sees_who_looked_at_their_data_and_nothing_of_others(
    desk: Desk, simulators: Simulators
) -> None:
    dataset = simulators.dataset
    wuhan = [p for p in dataset.permits.values()
             if p.work_location == "420100" and p.is_valid_on(dataset.today)]
    mine = desk.permit
    other = next(p.number for p in wuhan if p.holder.id != dataset.permits[mine].holder.id)
    officer = await desk.officer_token()
    for number in (mine, other, other):
        desk.permit = number
        looked = await desk.investigate(officer, **{"X-Case-Reference": "WH-2026-0001"})
        assert looked.status_code == 200, looked.text
    desk.permit = mine
    token = await desk.foreigner_token(mine)

    response = await desk.as_person(token, MY_LOG)

    assert response.status_code == 200, response.text
    entries = response.json()["data"]["myAccessLog"]["entries"]
    assert [(e["agency"], e["purpose"]) for e in entries] == [
        ("Wuhan Exit-Entry Administration", "investigation")
    ]  # one look at their permit; the two at the other person's are not theirs to see
    # Nothing else of a record is open to them: not who, not the case, not other subjects.
    for query in (
        "{ myAccessLog { entries { actor } } }",
        "{ myAccessLog { entries { clientId } } }",
        "query($s: ID!) { subjectAccessLog(subject: $s) { edges { node { agency } } } }",
        "{ accessLog { edges { node { agency } } } }",
    ):
        refused = await desk.as_person(token, query, s=other, n=other)
        assert refused.status_code in (400, 403), (query, refused.text)
        assert "data" not in refused.json() or refused.json()["data"] is None
        assert other not in refused.text
    # Another person's permit is a row outside their jurisdiction (tests/hub/test_self_rows.py).
    theirs = await desk.as_person(token, "query($n: ID!) { permit(number: $n) { number } }",
                                  n=other)
    assert theirs.json()["data"] == {"permit": None}
    assert theirs.json()["errors"][0]["extensions"]["reason"] == "OUT_OF_JURISDICTION"
    assert other not in theirs.text


async def test_an_agency_system_token_has_no_person_to_track(desk: Desk) -> None:
    response = await desk.hub.graphql("auditor-hubei", MY_LOG, purpose="audit")

    assert response.status_code == 403, response.text
    assert _code(response) == "FORBIDDEN"
