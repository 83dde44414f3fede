"""Issue 18: a purpose of use covers named operations, and a request outside them is refused.

The card center is registered for `card-issuance` (apply for cards, read permits, enrollments
and cards) and `card-service` (move a card along its lifecycle). Sent with the wrong one, a
request is refused with PURPOSE_NOT_ALLOWED (403) before any source system hears of it, however
the document is shaped; a purpose the client is not registered for is PURPOSE_REQUIRED, and the
refusal lists the purposes it may use. Both refusals are audited under the identifiers the
request named, so an auditor finds them by subject.
"""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from connectors.card_lifecycle import TRANSITIONS, is_live
from connectors.identifiers import make_permit_number, make_ssn
from connectors.records import CardKind, CardStatus
from observability.audit import AuditFilter
from tests.conftest import CASE_REVIEW, HubClient, Simulators, _drop_prefix, give_case_review
from tests.hub.test_cards import _card_requests, _pools
from tests.hub.test_events import SUBSCRIBE, _live_hub, _message, _open

CENTER = "ssc-card-center-hubei"
UPDATE = """mutation($i: UpdateCardStatusInput!) {
  updateCardStatus(input: $i) { card { cardNumber status } } }"""
CARDS = "query($s: ID!) { cards(ssn: $s) { cardNumber status } }"
FIND = """query($s: ID!) { accessLog(filter: {subject: $s}) {
  edges { node { outcome clientId purpose errorCodes subjects } } } }"""
NAMED_SSN = make_ssn("420100", 55_555_555_501)
NAMED_PERMIT = make_permit_number("420100", 2025, 5_555_555)


def _code(response: httpx.Response) -> str:
    code: str = response.json()["errors"][0]["extensions"]["code"]
    return code


def _card_of(simulators: Simulators) -> tuple[str, str]:
    """(ssn, card number) of a live physical card that no other test moves: the last holder of
    test_cards' pool of physical-card holders."""
    holder = _pools(simulators)["physical"][-1]
    card = next(
        c for c in simulators.dataset.cards[holder.ssn]
        if c.kind is CardKind.PHYSICAL and is_live(c.status)
    )
    return holder.ssn, card.card_number


async def _status(hub: HubClient, ssn: str, number: str) -> str:
    """The card's status now (the session's card system is shared: a test may have moved it)."""
    shown = await hub.graphql(CENTER, CARDS, {"s": ssn}, purpose="card-service")
    status: str = next(c["status"] for c in shown.json()["data"]["cards"]
                       if c["cardNumber"] == number)
    return status


async def test_card_issuance_does_not_cover_a_status_change_and_card_service_does(
    hub: HubClient, simulators: Simulators
) -> None:
    ssn, number = _card_of(simulators)
    status = await _status(hub, ssn, number)
    to = sorted(s.value for s in TRANSITIONS[CardKind.PHYSICAL][CardStatus(status)])[0]
    move = {"i": {"cardNumber": number, "status": to, "reason": "purpose test"}}
    before, writes = await simulators.upstream_calls(), await _card_requests(simulators)

    refused = await hub.graphql(CENTER, UPDATE, move, purpose="card-issuance")

    assert refused.status_code == 403, refused.text
    error = refused.json()["errors"][0]
    assert error["extensions"]["code"] == "PURPOSE_NOT_ALLOWED"
    assert error["extensions"]["notCovered"] == ["updateCardStatus"]
    assert error["message"] == "purpose card-issuance does not cover updateCardStatus"
    assert "data" not in refused.json()
    assert await simulators.upstream_calls() == before  # not one source-system call
    assert await _card_requests(simulators) == writes
    assert await _status(hub, ssn, number) == status

    allowed = await hub.graphql(CENTER, UPDATE, move, purpose="card-service")

    assert allowed.status_code == 200, allowed.text
    assert allowed.json() == {
        "data": {"updateCardStatus": {"card": {"cardNumber": number, "status": to}}}
    }


@pytest.mark.parametrize(
    ("document", "operation"),
    [
        ("mutation($i: UpdateCardStatusInput!) { keep: updateCardStatus(input: $i) "
         "{ card { status } } }", None),
        ("mutation($i: UpdateCardStatusInput!) { ...Change } "
         "fragment Change on Mutation { updateCardStatus(input: $i) { card { status } } }", None),
        ("mutation($i: UpdateCardStatusInput!) { ... on Mutation { ... { "
         "updateCardStatus(input: $i) { card { status } } } } }", None),
        ("mutation($i: UpdateCardStatusInput!, $no: Boolean = false) { "
         "updateCardStatus(input: $i) @include(if: $no) { card { status } } }", None),
        ("mutation($i: UpdateCardStatusInput!) { __typename "
         "updateCardStatus(input: $i) @skip(if: true) { card { status } } }", None),
        ("query Read($s: ID!) { cards(ssn: $s) { status } } "
         "mutation Change($i: UpdateCardStatusInput!) { updateCardStatus(input: $i) "
         "{ card { status } } }", "Change"),
        ("query Read($s: ID!) { cards(ssn: $s) { status } } "
         "mutation Change($i: UpdateCardStatusInput!) { updateCardStatus(input: $i) "
         "{ card { status } } }", None),
        ("query Read($s: ID!) { cards(ssn: $s) { status } } "
         "mutation Change($i: UpdateCardStatusInput!) { updateCardStatus(input: $i) "
         "{ card { status } } }", "NoSuchOperation"),
    ],
    ids=["alias", "fragment", "nested-inline-fragments", "include-false", "skipped",
         "operation-name", "no-operation-name", "unknown-operation-name"],
)
async def test_no_document_shape_runs_a_root_field_outside_its_purpose(
    hub: HubClient, simulators: Simulators, document: str, operation: str | None
) -> None:
    ssn, number = _card_of(simulators)
    status = await _status(hub, ssn, number)
    before = await simulators.upstream_calls()
    response = await hub.http.post(
        "/graphql",
        json={"query": document, "operationName": operation,
              "variables": {"i": {"cardNumber": number, "status": "ACTIVE"}, "s": ssn}},
        headers={"authorization": f"Bearer {await hub.token(CENTER)}",
                 "x-purpose-of-use": "card-issuance"},
    )
    assert response.status_code == 403, response.text
    assert _code(response) == "PURPOSE_NOT_ALLOWED"
    assert response.json()["errors"][0]["extensions"]["notCovered"] == ["updateCardStatus"]
    assert await simulators.upstream_calls() == before
    assert await _status(hub, ssn, number) == status


async def test_the_operation_named_is_the_one_checked(
    hub: HubClient, simulators: Simulators
) -> None:
    """A document may hold operations of several purposes: the one that runs is checked."""
    ssn, number = _card_of(simulators)
    document = (
        "query Read($s: ID!) { cards(ssn: $s) { cardNumber } } mutation Change { "
        f'updateCardStatus(input: {{cardNumber: "{number}", status: ACTIVE}}) '
        "{ card { status } } }"
    )
    response = await hub.http.post(
        "/graphql",
        json={"query": document, "operationName": "Read", "variables": {"s": ssn}},
        headers={"authorization": f"Bearer {await hub.token(CENTER)}",
                 "x-purpose-of-use": "card-issuance"},
    )
    assert response.status_code == 200, response.text
    assert number in {c["cardNumber"] for c in response.json()["data"]["cards"]}


async def test_introspection_fields_are_allowed_whatever_the_purpose_covers(
    hub: HubClient,
) -> None:
    # The WMS's purpose covers no GraphQL operation at all (it publishes events).
    response = await hub.graphql("wms", "{ __typename }", purpose="permit-change-notification")
    assert response.status_code == 200, response.text
    assert response.json() == {"data": {"__typename": "Query"}}
    refused = await hub.graphql(
        CENTER, f'{{ __typename permit(number: "{NAMED_PERMIT}") {{ status }} }}',
        purpose="card-service",
    )
    assert refused.status_code == 403 and _code(refused) == "PURPOSE_NOT_ALLOWED"
    assert refused.json()["errors"][0]["extensions"]["notCovered"] == ["permit"]


@pytest.mark.parametrize("sent", [None, "", "investigation", "<script>alert(1)</script>"])
async def test_a_purpose_the_client_may_not_use_is_refused_with_the_ones_it_may(
    hub: HubClient, simulators: Simulators, sent: str | None
) -> None:
    headers = {"authorization": f"Bearer {await hub.token(CENTER)}"}
    if sent is not None:
        headers["x-purpose-of-use"] = sent
    before = await simulators.upstream_calls()
    response = await hub.http.post(
        "/graphql", json={"query": CARDS, "variables": {"s": NAMED_SSN}}, headers=headers
    )
    assert response.status_code == 403
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "PURPOSE_REQUIRED"
    assert error["extensions"]["purposes"] == ["card-issuance", "card-service"]
    assert error["message"].endswith(f"client {CENTER} may use: card-issuance, card-service")
    assert "script" not in response.text and "investigation" not in response.text
    assert await simulators.upstream_calls() == before


async def _found_by(hub: HubClient, subject: str) -> list[dict[str, Any]]:
    log = await hub.graphql("auditor-hubei", FIND, {"s": subject})
    assert log.status_code == 200, log.text
    return [e["node"] for e in log.json()["data"]["accessLog"]["edges"]]


async def test_both_purpose_refusals_are_found_by_the_subjects_the_request_named(
    hub: HubClient,
) -> None:
    literal_and_variable = (
        f'query($s: ID!) {{ cards(ssn: $s) {{ status }} '
        f'permit(number: "{NAMED_PERMIT}") {{ status }} }}'
    )
    unregistered = await hub.graphql(
        CENTER, literal_and_variable, {"s": NAMED_SSN}, purpose="benefit-check"
    )
    outside = await hub.graphql(
        CENTER, UPDATE, {"i": {"cardNumber": "X", "status": "ACTIVE"}}, purpose="card-issuance"
    )
    outside_named = await hub.graphql(
        CENTER, "query Read($s: ID!) { cards(ssn: $s) { status } } mutation Change("
        "$i: UpdateCardStatusInput!) { updateCardStatus(input: $i) { card { status } } }",
        {"s": NAMED_SSN, "i": {"cardNumber": "X", "status": "ACTIVE"}}, purpose="card-issuance",
    )
    assert (_code(unregistered), _code(outside), _code(outside_named)) == (
        "PURPOSE_REQUIRED", "PURPOSE_NOT_ALLOWED", "PURPOSE_NOT_ALLOWED"
    )

    by_ssn = await _found_by(hub, NAMED_SSN)
    by_permit = await _found_by(hub, NAMED_PERMIT)
    assert [(n["outcome"], n["clientId"], n["errorCodes"]) for n in by_ssn] == [
        ("DENIED", CENTER, ["PURPOSE_NOT_ALLOWED"]),
        ("DENIED", CENTER, ["PURPOSE_REQUIRED"]),
    ]
    assert by_ssn[0]["purpose"] == "card-issuance"
    assert by_ssn[1]["purpose"] is None  # not a purpose the client may use: not recorded
    assert set(by_ssn[1]["subjects"]) == {NAMED_SSN, NAMED_PERMIT}
    assert [n["errorCodes"] for n in by_permit] == [["PURPOSE_REQUIRED"]]


async def test_a_purpose_refusal_stays_one_when_its_body_cannot_be_read(
    hub: HubClient, simulators: Simulators
) -> None:
    """Its body is read only to name its subjects: a body over the limit, sent without a length,
    leaves the refusal a purpose refusal, as it was before bodies were read for it."""
    limit = hub.hub.settings.max_body_bytes

    async def chunks() -> Any:
        for _ in range(limit // 4096 + 2):
            yield b" " * 4096

    response = await hub.http.post(
        "/graphql", content=chunks(),
        headers={"authorization": f"Bearer {await hub.token(CENTER)}",
                 "x-purpose-of-use": "benefit-check", "content-type": "application/json"},
    )
    assert response.status_code == 403, response.text
    assert _code(response) == "PURPOSE_REQUIRED"


async def test_a_purpose_narrowed_reaches_tokens_already_issued(
    hub: HubClient, simulators: Simulators
) -> None:
    ssn = _card_of(simulators)[0]
    token = await hub.token(CENTER)  # issued before the change, used throughout
    before = await hub.graphql(CENTER, CARDS, {"s": ssn}, purpose="card-issuance")
    assert before.status_code == 200

    await hub.hub.auth.set_purpose_operations("card-issuance", ["applyForCard", "applyForCards"])
    narrowed = await hub.graphql(CENTER, CARDS, {"s": ssn}, purpose="card-issuance")
    await hub.hub.auth.set_purpose_operations("card-issuance", ["applyForCard", "cards"])
    widened = await hub.graphql(CENTER, CARDS, {"s": ssn}, purpose="card-issuance")

    assert hub.tokens[CENTER] == token
    assert narrowed.status_code == 403 and _code(narrowed) == "PURPOSE_NOT_ALLOWED"
    assert widened.status_code == 200, widened.text
    changes = await hub.hub.audit.search(
        AuditFilter(operation="purpose_changed"), subject_view=False, today=dt.date.today()
    )
    assert [(r.purpose, r.fields) for r in changes.records[:2]] == [
        ("card-issuance", ("applyForCard", "cards")),
        ("card-issuance", ("applyForCard", "applyForCards")),
    ]


async def test_a_subscription_outside_its_purpose_is_refused_and_audited(
    simulators: Simulators, database_url: str, tmp_path: Path
) -> None:
    prefix = f"test:{uuid.uuid4().hex[:12]}:"
    try:
        async with _live_hub(simulators, database_url, tmp_path, prefix) as live:
            # a case review covers permits, people and cards, not a feed of permit changes
            review = await give_case_review(live.hub.auth)
            ws = await _open(live, "exit-entry-wuhan", purpose=review)
            try:
                assert (await _message(ws))["type"] == "connection_ack"
                payload = {"query": SUBSCRIBE, "variables": {"n": [NAMED_PERMIT]}}
                await ws.send(_json({"id": "feed", "type": "subscribe", "payload": payload}))
                refused = await _message(ws)
            finally:
                await ws.close()
            ws = await _open(live, "exit-entry-wuhan", purpose="residence-permit-check")
            try:
                assert (await _message(ws))["type"] == "connection_ack"
                await ws.send(_json({"id": "feed", "type": "subscribe", "payload": payload}))
                await ws.send(_json({"type": "ping"}))
                admitted = await _message(ws)  # the pong: nothing was said about "feed"
            finally:
                await ws.close()
            page = await live.hub.audit.search(
                AuditFilter(subject=NAMED_PERMIT), subject_view=False, today=dt.date.today()
            )
    finally:
        await _drop_prefix(prefix)
    assert (refused["id"], refused["type"]) == ("feed", "error")
    error = refused["payload"][0]
    assert error["extensions"]["code"] == "PURPOSE_NOT_ALLOWED"
    assert error["extensions"]["notCovered"] == ["permitStatusChanged"]
    assert admitted == {"type": "pong"}
    denied = [r for r in page.records if r.outcome == "DENIED"]
    assert [(r.kind, r.purpose, r.error_codes) for r in denied] == [
        ("subscription", CASE_REVIEW, ("PURPOSE_NOT_ALLOWED",))
    ]


def _json(message: dict[str, Any]) -> str:
    return orjson.dumps(message).decode()
