"""A foreigner's own rows through the e-SSC app (README, "A foreigner's own rows").

Over real HTTP and WebSocket, with the simulated source systems and the simulated
identity-verification service: a person token from a real token exchange reads the person's
permit, enrollment, cards, holder record and the QR code of their current permit (which an
agency's `verifyPermitQr` accepts), hears their own permit's events, and is refused every other
person's rows exactly as an agency is refused rows outside its jurisdiction: null at the path,
FORBIDDEN with OUT_OF_JURISDICTION, recorded PARTIAL or DENIED with the refused identifiers.

And the WebSocket door holds an officer's purpose (`investigation`) to what POST /graphql does:
an officer's token and `X-Case-Reference`, both recorded.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from hub.demo_clients import DEMO_PURPOSES, seed_demo_purposes
from simulators import IdentityProviders
from tests.conftest import HubClient, Simulators, demo_identity_providers, open_hub
from tests.hub.foreigners import EXCHANGE, JWT_TYPE, Person, people, person_token
from tests.hub.test_events import LiveHub, _change, _message, _pushed_to

OWN = """query($n: ID!, $s: ID!) {
  permit(number: $n) {
    number status validFrom validUntil isValid medium
    holder { id name nationality }
    employer { name creditCode } category position workLocation { code } history { kind }
    enrollment { ssn status } cards { kind status }
  }
  enrollment(ssn: $s) { ssn status permitNumber enrolledOn region { code }
                        permit { number } cards { kind status } }
  cards(ssn: $s) { kind status issuedOn region { code } }
  me { id name nationality permits { number isValid } enrollments { ssn status } }
}"""
QR = "{ myPermitQr { payload permitNumber expiresAt } }"
VERIFY = "query($p: String!) { verifyPermitQr(payload: $p) { valid reason permit { number } } }"
AUDIT = """query($f: AccessLogFilter) { accessLog(filter: $f, first: 50) { edges { node {
    clientId purpose outcome errorCodes actor actorKind caseReference subjects denied } } } }"""


@dataclass
class App:
    """The e-SSC app in front of one hub, and two of the data set's foreigners."""

    hub: HubClient
    idp: httpx.AsyncClient
    me: Person
    other: Person

    async def token(self, person: Person | None = None) -> str:
        person = person or self.me
        return await person_token(
            self.hub.http, self.idp, self.hub.secrets["essc-app"], person.permit.number,
            person.name,
        )

    async def ask(self, token: str, query: str, **variables: Any) -> httpx.Response:
        return await self.hub.http.post(
            "/graphql", json={"query": query, "variables": variables},
            headers={"Authorization": f"Bearer {token}", "X-Purpose-Of-Use": "self-service"},
        )

    async def audit(self, **where: Any) -> list[dict[str, Any]]:
        response = await self.hub.graphql("auditor-hubei", AUDIT, {"f": where}, purpose="audit")
        assert response.status_code == 200, response.text
        return [edge["node"] for edge in response.json()["data"]["accessLog"]["edges"]]


@pytest.fixture
async def app(
    simulators: Simulators, database_url: str, tmp_path: Path
) -> AsyncIterator[App]:
    me, other = people(simulators.dataset)[:2]
    async with open_hub(simulators, database_url, tmp_path) as hub, demo_identity_providers(
        hub.hub.auth, simulators.dataset
    ) as (_, _, idp):
        yield App(hub, idp, me, other)


def _refusals(body: dict[str, Any]) -> dict[str, str]:
    """Path -> reason of each FORBIDDEN error of an answer."""
    return {
        ".".join(str(step) for step in e["path"]): e["extensions"].get("reason")
        for e in body.get("errors", ()) if e["extensions"]["code"] == "FORBIDDEN"
    }


# -- their own rows --------------------------------------------------------------------------


async def test_a_foreigner_reads_their_own_permit_enrollment_cards_and_holder_record(
    app: App,
) -> None:
    me = app.me
    token = await app.token()

    response = await app.ask(token, OWN, n=me.permit.number, s=me.ssns[0])

    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    data = body["data"]
    permit = data["permit"]
    assert (permit["number"], permit["isValid"]) == (me.permit.number, True)
    assert permit["holder"] == {"id": me.id, "name": me.name,
                                "nationality": me.permit.holder.nationality}
    assert permit["employer"]["name"] == me.permit.employer.name
    assert permit["position"] == me.permit.position
    assert permit["enrollment"]["ssn"] == me.ssns[0]
    enrollment = data["enrollment"]
    assert (enrollment["ssn"], enrollment["permitNumber"]) == (me.ssns[0], me.permit.number)
    assert enrollment["permit"] == {"number": me.permit.number}
    # Their cards, however reached (other tests may have moved a card's status since).
    cards = sorted((c["kind"], c["status"]) for c in data["cards"])
    assert len(cards) == len(me.cards) > 0
    assert sorted((c["kind"], c["status"]) for c in permit["cards"]) == cards
    assert sorted((c["kind"], c["status"]) for c in enrollment["cards"]) == cards
    assert data["me"]["id"] == me.id and data["me"]["name"] == me.name
    assert [p["number"] for p in data["me"]["permits"]] == list(me.permits)
    assert [e["ssn"] for e in data["me"]["enrollments"]] == list(me.ssns)
    # The read is recorded as the person's, naming their own identifiers only.
    [record] = await app.audit(actor=me.id)
    assert (record["actorKind"], record["outcome"]) == ("SUBJECT", "OK")
    assert record["clientId"] == "essc-app" and record["purpose"] == "self-service"
    assert set(record["subjects"]) >= {me.permit.number, me.ssns[0]}
    assert not set(record["subjects"]) & set(app.other.identifiers)


async def test_the_qr_code_of_their_current_permit_is_the_wms_s_and_scans_valid(
    app: App,
) -> None:
    token = await app.token()

    response = await app.ask(token, QR)

    assert response.status_code == 200, response.text
    qr = response.json()["data"]["myPermitQr"]
    assert qr["permitNumber"] == app.me.permit.number
    assert dt.datetime.fromisoformat(qr["expiresAt"]) > dt.datetime.now(dt.UTC)
    scanned = await app.hub.graphql("exit-entry-wuhan", VERIFY, {"p": qr["payload"]})
    assert scanned.status_code == 200, scanned.text
    assert scanned.json()["data"]["verifyPermitQr"] == {
        "valid": True, "reason": None, "permit": {"number": app.me.permit.number}
    }


async def test_a_foreigner_without_a_current_permit_gets_no_qr_code(
    app: App, simulators: Simulators
) -> None:
    dataset = simulators.dataset
    samples = set(dataset.samples.values())
    holder, numbers = next(
        (h, ns) for h, ns in sorted(dataset.permits_by_holder.items())
        if not set(ns) & samples
        and not any(dataset.permits[n].is_valid_on(dataset.today) for n in ns)
    )
    permit = dataset.permits[numbers[-1]]
    token = await person_token(app.hub.http, app.idp, app.hub.secrets["essc-app"],
                               permit.number, permit.holder.name)

    response = await app.ask(token, QR)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["data"] == {"myPermitQr": None}
    [error] = body["errors"]
    assert error["extensions"]["code"] == "NOT_FOUND"
    assert "no permit valid today" in error["message"]
    assert holder not in response.text


# -- everyone else's rows ----------------------------------------------------------------------


async def test_another_persons_rows_are_refused_as_out_of_jurisdiction_and_recorded(
    app: App,
) -> None:
    me, other = app.me, app.other
    token = await app.token()
    query = """query($mine: ID!, $theirs: ID!, $ssn: ID!) {
      mine: permit(number: $mine) { number status }
      theirs: permit(number: $theirs) { number status }
      batch: permits(numbers: [$mine, $theirs]) { number }
      enrollment(ssn: $ssn) { status }
      cards(ssn: $ssn) { status }
    }"""

    response = await app.ask(token, query, mine=me.permit.number, theirs=other.permit.number,
                             ssn=other.ssns[0])

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["data"] == {
        "mine": {"number": me.permit.number, "status": "VALID"},
        "theirs": None,
        "batch": [{"number": me.permit.number}, None],
        "enrollment": None,
        "cards": None,
    }
    assert _refusals(body) == {
        path: "OUT_OF_JURISDICTION" for path in ("theirs", "batch.1", "enrollment", "cards")
    }
    for identifier in other.identifiers:
        assert identifier not in response.text
    [record] = await app.audit(actor=me.id)
    assert (record["actorKind"], record["outcome"]) == ("SUBJECT", "PARTIAL")
    assert set(record["denied"]) == {"theirs", "batch.1", "enrollment", "cards"}
    assert {other.permit.number, other.ssns[0]} <= set(record["subjects"])

    only_theirs = await app.ask(token, "query($n: ID!) { permit(number: $n) { isValid } }",
                                n=other.permit.number)

    assert only_theirs.status_code == 200, only_theirs.text
    assert only_theirs.json()["data"] == {"permit": None}  # not even its validity
    denied = [r for r in await app.audit(actor=me.id) if r["outcome"] == "DENIED"]
    assert [r["subjects"] for r in denied] == [[other.permit.number]]
    assert denied[0]["actorKind"] == "SUBJECT"


async def test_what_self_read_does_not_open_is_refused_whole(app: App) -> None:
    token = await app.token()
    for query in (
        "query($n: ID!) { permit(number: $n) { holder { passportNumber } } }",
        "query($n: ID!) { permit(number: $n) { notificationLetterNumber } }",
        "query($s: ID!) { cards(ssn: $s) { cardNumber } }",
        "query($n: ID!) { foreigner(permitNumber: $n) { name } }",
        "{ accessLog { edges { node { agency } } } }",
        "mutation($c: ID!) { updateCardStatus(input: {cardNumber: $c, status: SUSPENDED}) "
        "{ card { status } } }",
    ):
        response = await app.ask(token, query, n=app.me.permit.number, s=app.me.ssns[0],
                                 c=app.me.cards[0].card_number)
        assert response.status_code == 403, (query, response.text)
        assert response.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        assert "data" not in response.json() or response.json()["data"] is None


# -- over WebSocket ----------------------------------------------------------------------------

OWN_EVENTS = "subscription { permitStatusChanged { permitNumber kind status } }"
NAMED_EVENTS = """subscription($n: [ID!]) {
  permitStatusChanged(numbers: $n) { permitNumber kind status } }"""


@dataclass
class Live:
    hub: LiveHub
    idp: httpx.AsyncClient
    identity: IdentityProviders
    idp_url: str


@pytest.fixture
async def live(
    simulators: Simulators, database_url: str, tmp_path: Path
) -> AsyncIterator[Live]:
    async with _pushed_to(simulators, database_url, tmp_path) as hub, demo_identity_providers(
        hub.hub.auth, simulators.dataset
    ) as (identity, idp_url, idp):
        yield Live(hub, idp, identity, idp_url)


async def _open(live: Live, token: str, purpose: str, **extra: str) -> ClientConnection:
    ws = await connect(
        live.hub.url.replace("http://", "ws://") + "/graphql",
        subprotocols=[Subprotocol("graphql-transport-ws")],
    )
    payload = {"Authorization": f"Bearer {token}", "X-Purpose-Of-Use": purpose, **extra}
    await ws.send(orjson.dumps({"type": "connection_init", "payload": payload}).decode())
    return ws


async def _subscribe(ws: ClientConnection, query: str, **variables: Any) -> None:
    assert (await _message(ws))["type"] == "connection_ack"
    message = {"id": "1", "type": "subscribe",
               "payload": {"query": query, "variables": variables}}
    await ws.send(orjson.dumps(message).decode())


async def _person_token(live: Live, person: Person) -> str:
    return await person_token(
        live.hub.http, live.idp, live.hub.secrets["essc-app"], person.permit.number,
        person.name, token_url=live.hub.url + "/oauth/token",
    )


async def test_a_foreigner_hears_their_own_permits_events_only(
    live: Live, simulators: Simulators
) -> None:
    me, other = people(simulators.dataset, reverse=True)[:2]
    ws = await _open(live, await _person_token(live, me), "self-service")
    try:
        await _subscribe(ws, OWN_EVENTS)
        await asyncio.sleep(0.2)  # registered once the hub has read the message
        await _change(simulators, other.permit.number, "ALTERED", position="Surveyor")
        await _change(simulators, me.permit.number, "ALTERED", position="Chief surveyor")
        message = await _message(ws)
    finally:
        await ws.close()

    assert message["type"] == "next", message
    event = message["payload"]["data"]["permitStatusChanged"]
    assert (event["permitNumber"], event["kind"]) == (me.permit.number, "ALTERED")
    sent = [r for r in await live.hub.audit("subscription") if r.subjects]
    assert [r.subjects for r in sent] == [(me.permit.number,)]
    assert (sent[0].actor, sent[0].actor_kind) == (me.id, "SUBJECT")


async def test_a_foreigner_naming_anothers_permit_is_refused_as_out_of_jurisdiction(
    live: Live, simulators: Simulators
) -> None:
    me, other = people(simulators.dataset, reverse=True)[2:4]
    ws = await _open(live, await _person_token(live, me), "self-service")
    try:
        await _subscribe(ws, NAMED_EVENTS, n=[me.permit.number, other.permit.number])
        message = await _message(ws)
    finally:
        await ws.close()

    assert message["type"] == "error" and message["id"] == "1", message
    [error] = message["payload"]
    assert error["extensions"]["code"] == "FORBIDDEN"
    assert error["extensions"]["reason"] == "OUT_OF_JURISDICTION"
    assert other.permit.number not in orjson.dumps(message).decode()
    [refused] = [r for r in await live.hub.audit("subscription") if r.outcome == "DENIED"]
    assert other.permit.number in refused.subjects
    assert (refused.actor, refused.actor_kind) == (me.id, "SUBJECT")


async def _officer_token(live: Live) -> str:
    assertion = await live.idp.post(
        "/officers/assertion", json={"client_id": "exit-entry-wuhan", "officer": "PS-0001"})
    assert assertion.status_code == 200, assertion.text
    response = await live.hub.http.post(
        live.hub.url + "/oauth/token",
        data={"grant_type": EXCHANGE, "subject_token": assertion.json()["assertion"],
              "subject_token_type": JWT_TYPE},
        auth=("exit-entry-wuhan", live.hub.secrets["exit-entry-wuhan"]),
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


async def _closed(ws: ClientConnection) -> int:
    with pytest.raises(ConnectionClosed) as closed:
        await _message(ws)
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code


async def test_an_investigation_over_websocket_needs_an_officer_and_a_case_both_recorded(
    live: Live, simulators: Simulators
) -> None:
    auth = live.hub.hub.auth
    # A case officer watching the permit under investigation: the purpose covers the
    # subscription and the officer's role opens `events:subscribe`.
    await auth.set_purpose_operations(
        "investigation", sorted(DEMO_PURPOSES["investigation"] | {"permitStatusChanged"})
    )
    await auth.remove_identity_provider(
        "exit-entry-wuhan", live.identity.issuer(live.idp_url, "exit-entry-wuhan"))
    await auth.add_identity_provider(
        "exit-entry-wuhan", live.identity.issuer(live.idp_url, "exit-entry-wuhan"), "officer",
        {"border-officer": ["permit:validity", "permit:holder", "card:status",
                            "events:subscribe"]},
        jwks_url=live.identity.jwks_url(live.idp_url, "exit-entry-wuhan"),
    )
    [watched] = people(simulators.dataset, reverse=True)[4:5]
    case = {"X-Case-Reference": "WH-2026-0042"}

    agency_alone = await _open(live, await live.hub.token("exit-entry-wuhan"), "investigation",
                               **case)
    assert await _closed(agency_alone) == 4403
    no_case = await _open(live, await _officer_token(live), "investigation")
    assert await _closed(no_case) == 4403
    refused = [r for r in await live.hub.audit("subscription") if r.outcome == "DENIED"]
    assert sorted(r.error_codes for r in refused) == [
        ("CASE_REFERENCE_REQUIRED",), ("OFFICER_REQUIRED",)
    ]

    ws = await _open(live, await _officer_token(live), "investigation", **case)
    try:
        await _subscribe(ws, NAMED_EVENTS, n=[watched.permit.number])
        await asyncio.sleep(0.2)
        await _change(simulators, watched.permit.number, "ALTERED", position="Foreman")
        message = await _message(ws)
    finally:
        await ws.close()

    assert message["type"] == "next", message
    assert message["payload"]["data"]["permitStatusChanged"]["permitNumber"] == (
        watched.permit.number
    )
    records = [r for r in await live.hub.audit("subscription") if r.outcome == "OK"]
    assert len(records) == 2  # the subscription, then its event
    assert {(r.actor, r.actor_kind, r.case_reference) for r in records} == {
        ("PS-0001", "OFFICER", "WH-2026-0042")
    }
    assert any(r.subjects == (watched.permit.number,) for r in records)


# -- the demo ------------------------------------------------------------------------------------


async def test_a_demo_database_of_the_previous_version_gets_the_new_self_service_operations(
    hub: HubClient,
) -> None:
    auth = hub.hub.auth

    async def self_service() -> frozenset[str]:
        return next(p.operations for p in await auth.list_purposes() if p.name == "self-service")

    await auth.set_purpose_operations("self-service", ["myAccessLog"])  # as seeded before
    await seed_demo_purposes(auth)
    assert await self_service() == DEMO_PURPOSES["self-service"]

    await auth.set_purpose_operations("self-service", ["myAccessLog", "me"])  # an operator's
    await seed_demo_purposes(auth)
    assert await self_service() == {"myAccessLog", "me"}
