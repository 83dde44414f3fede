"""Issue 5, item 2: the card department applies for cards and moves them along their lifecycle.

`applyForCard`, `applyForCards` (an employer's batch) and `updateCardStatus`, through the GraphQL
API with real tokens. The session's card system is shared by every test and these mutations
change it, so each test takes holders of its own: disjoint slices of the dataset's ACTIVE
enrollments (no demo sample, nothing in the `sorted(permits)[:500]` batch other tests read),
grouped by the kinds of live card they already hold.
"""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from collections import deque
from dataclasses import dataclass
from typing import Any

import pytest

from connectors.card_lifecycle import BIRTH, TERMINAL, TRANSITIONS, is_live
from connectors.identifiers import make_ssn, mod11_2_check_char
from connectors.records import CardKind, CardStatus, EnrollmentStatus, Permit
from observability.audit import AuditFilter
from tests.conftest import AGENCY_REGIONS, HubClient, Simulators, si_agency_of

CENTER = "ssc-card-center-hubei"
CARD = "card { cardNumber ssn kind status channel issuedOn region { code } history { status } }"
APPLY = f"""mutation($i: CardApplicationInput!) {{
  applyForCard(input: $i) {{ created {CARD} }} }}"""
APPLY_BATCH = f"""mutation($i: BatchCardApplicationInput!) {{
  applyForCards(input: $i) {{
    total created replayed failed
    results {{ index ssn created error {{ code message }} {CARD} }} }} }}"""
UPDATE = f"""mutation($i: UpdateCardStatusInput!) {{
  updateCardStatus(input: $i) {{ {CARD} }} }}"""
REGISTER = """mutation($i: RegisterEnrollmentInput!) {
  registerEnrollment(input: $i) { enrollment { ssn } } }"""
UNKNOWN_SSN = make_ssn("420100", 99_999_999_990)


# --- test data ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Holder:
    ssn: str
    permit: Permit


# Slices of each pool, one per test; `_BATCH_FROM` on is left to the employer batch.
_SLICES = {
    ("none", "physical"): (0, 1), ("none", "retry"): (1, 2), ("none", "other_input"): (2, 3),
    ("none", "lifecycle"): (3, 4), ("none", "electronic_lifecycle"): (4, 5),
    ("none", "refused"): (5, 6), ("none", "never_written"): (6, 7),
    ("physical", "electronic"): (0, 1), ("both", "duplicate"): (0, 1),
    ("both", "batch"): (1, 10), ("suspended", "refused"): (0, 1), ("suspended", "batch"): (1, 2),
}
_BATCH_FROM = 10


def _pools(simulators: Simulators) -> dict[str, list[Holder]]:
    """Holders by the live cards they hold ("none", "physical", "electronic", "both"), and the
    holders of a SUSPENDED enrollment; each pool in a fixed order."""
    dataset = simulators.dataset
    read_elsewhere = set(sorted(dataset.permits)[:500]) | set(dataset.samples.values())
    pools: dict[str, list[Holder]] = {}
    for enrollment in sorted(dataset.enrollments.values(), key=lambda e: e.ssn, reverse=True):
        permit = dataset.permits[enrollment.permit_number]
        if {permit.number, enrollment.ssn} & read_elsewhere or not permit.is_valid_on(
            dataset.today
        ):
            continue
        live = {c.kind for c in dataset.cards.get(enrollment.ssn, ()) if is_live(c.status)}
        if enrollment.status is not EnrollmentStatus.ACTIVE:
            pool = "suspended"
        elif len(live) == 1:
            pool = live.pop().value.lower()
        else:
            pool = "both" if live else "none"
        pools.setdefault(pool, []).append(Holder(enrollment.ssn, permit))
    return pools


def _holders(simulators: Simulators, pool: str, test: str) -> list[Holder]:
    start, stop = _SLICES[(pool, test)]
    return _pools(simulators)[pool][start:stop]


def _item(holder: Holder, **changes: Any) -> dict[str, Any]:
    given = {
        "ssn": holder.ssn,
        "name": holder.permit.holder.name,
        "nationality": holder.permit.holder.nationality,
        "passportNumber": holder.permit.holder.passport_number,
    }
    return {**given, **changes}


def _application(holder: Holder, kind: str = "PHYSICAL", **changes: Any) -> dict[str, Any]:
    channel = "ONLINE" if kind == "ELECTRONIC" else "IN_PERSON"
    given = {**_item(holder), "kind": kind, "channel": channel, "idempotencyKey": _key()}
    return {**given, **changes}


def _key() -> str:
    return f"test-{uuid.uuid4().hex}"


def _wrong_check(ssn: str) -> str:
    return ssn[:17] + ("0" if mod11_2_check_char(ssn[:17]) != "0" else "1")


# --- calling the hub ------------------------------------------------------------------------


async def _call(
    hub: HubClient, query: str, given: dict[str, Any], client: str = CENTER
) -> dict[str, Any]:
    response = await hub.graphql(client, query, {"i": given})
    body: dict[str, Any] = response.json()
    return body


async def _apply(hub: HubClient, given: dict[str, Any]) -> dict[str, Any]:
    body = await _call(hub, APPLY, given)
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["applyForCard"]
    return result


async def _move(hub: HubClient, number: str, to: str, **more: Any) -> dict[str, Any]:
    return await _call(hub, UPDATE, {"cardNumber": number, "status": to, **more})


def _code(body: dict[str, Any]) -> str:
    code: str = body["errors"][0]["extensions"]["code"]
    return code


async def _audited(hub: HubClient) -> list[tuple[str, tuple[str, ...], tuple[str, ...]]]:
    """(outcome, error codes, subjects) of each GraphQL request the hub recorded, newest first."""
    page = await hub.hub.audit.search(
        AuditFilter(), 500, None, subject_view=False, today=dt.date.today()
    )
    return [
        (r.outcome, tuple(r.error_codes), tuple(r.subjects))
        for r in page.records if r.kind == "graphql"
    ]


async def _card_requests(simulators: Simulators) -> dict[str, int]:
    requests: dict[str, int] = (await simulators.stats(simulators.cards_url))["requests"]
    return requests


# --- single applications --------------------------------------------------------------------


async def test_a_physical_card_is_applied_for_and_starts_in_the_applied_state(
    hub: HubClient, simulators: Simulators
) -> None:
    (holder,) = _holders(simulators, "none", "physical")
    result = await _apply(hub, _application(holder))
    card = result["card"]
    assert result["created"] is True
    assert card["cardNumber"].startswith("H") and card["ssn"] == holder.ssn
    assert (card["kind"], card["status"], card["channel"]) == ("PHYSICAL", "APPLIED", "IN_PERSON")
    assert card["issuedOn"] is None and card["history"] == [{"status": "APPLIED"}]
    assert card["region"] == {"code": holder.ssn[:6]}  # the enrollment's region
    shown = await hub.graphql(CENTER, "query($s: ID!) { cards(ssn: $s) { cardNumber } }",
                              {"s": holder.ssn})
    assert {"cardNumber": card["cardNumber"]} in shown.json()["data"]["cards"]
    outcome, codes, subjects = (await _audited(hub))[-1]
    assert (outcome, codes) == ("OK", ()) and holder.ssn in subjects


async def test_an_electronic_card_is_active_at_once_for_a_verified_holder(
    hub: HubClient, simulators: Simulators
) -> None:
    (holder,) = _holders(simulators, "physical", "electronic")
    sloppy = "  " + holder.permit.holder.name.upper() + " "
    result = await _apply(hub, _application(holder, "ELECTRONIC", name=sloppy))
    card = result["card"]
    assert result["created"] is True and card["cardNumber"].startswith("EH")
    assert (card["kind"], card["status"], card["channel"]) == ("ELECTRONIC", "ACTIVE", "ONLINE")
    assert card["issuedOn"] == dt.datetime.now(dt.UTC).date().isoformat()
    assert [h["status"] for h in card["history"]] == ["APPLIED", "ISSUED", "ACTIVE"]


async def test_an_electronic_card_is_refused_without_identity_or_enrollment(
    hub: HubClient, simulators: Simulators
) -> None:
    (holder,) = _holders(simulators, "none", "refused")
    (suspended,) = _holders(simulators, "suspended", "refused")
    other_passport = holder.permit.holder.passport_number[:-1] + (
        "1" if holder.permit.holder.passport_number[-1] != "1" else "2"
    )
    refused_by_the_workflow = [
        _application(holder, "ELECTRONIC", passportNumber=other_passport),
        _application(holder, "ELECTRONIC", name=holder.permit.holder.name + " Junior"),
        _application(holder, "ELECTRONIC", nationality="ZZZ"),
        _application(holder, "ELECTRONIC", ssn=UNKNOWN_SSN),  # no enrollment
        _application(suspended, "ELECTRONIC"),  # enrollment not ACTIVE
        _application(holder, "ELECTRONIC", channel="IN_PERSON"),  # electronic: online only
        _application(holder, "PHYSICAL", channel="EMPLOYER_BATCH"),  # batches: applyForCards
        _application(holder, "ELECTRONIC", idempotencyKey="short"),
    ]
    refused_before_execution = [
        _application(holder, "ELECTRONIC", ssn=_wrong_check(holder.ssn)),
        _application(holder, "ELECTRONIC", ssn=make_ssn("110000", 12345)),  # no agency there
    ]
    for given in refused_by_the_workflow:
        body = await _call(hub, APPLY, given)
        assert _code(body) == "BAD_USER_INPUT" and body["data"] is None, (given, body)
    for given in refused_before_execution:
        response = await hub.graphql(CENTER, APPLY, {"i": given})
        assert response.status_code == 400 and _code(response.json()) == "BAD_USER_INPUT"
    assert "POST /cards:apply" not in await _card_requests(simulators)
    attempts = len(refused_by_the_workflow) + len(refused_before_execution)
    recorded = [(outcome, codes) for outcome, codes, _ in await _audited(hub)]
    assert recorded == [("ERROR", ("BAD_USER_INPUT",))] * attempts
    shown = await hub.graphql(CENTER, "query($s: ID!) { cards(ssn: $s) { kind } }",
                              {"s": holder.ssn})
    assert shown.json()["data"]["cards"] == []


async def test_the_same_key_and_input_give_the_same_card_without_a_second_one(
    hub: HubClient, simulators: Simulators
) -> None:
    (holder,) = _holders(simulators, "none", "retry")
    given = _application(holder)
    first = await _apply(hub, given)
    again = await _apply(hub, {**given, "name": given["name"].lower()})  # the same person
    assert (first["created"], again["created"]) == (True, False)
    assert again["card"] == first["card"]
    shown = await hub.graphql(CENTER, "query($s: ID!) { cards(ssn: $s) { cardNumber } }",
                              {"s": holder.ssn})
    assert shown.json()["data"]["cards"] == [{"cardNumber": first["card"]["cardNumber"]}]


async def test_the_same_key_with_other_input_is_a_conflict(
    hub: HubClient, simulators: Simulators
) -> None:
    (holder,) = _holders(simulators, "none", "other_input")
    given = _application(holder)
    await _apply(hub, given)
    for changed in ({**given, "channel": "ONLINE"}, {**given, "kind": "ELECTRONIC",
                                                     "channel": "ONLINE"}):
        body = await _call(hub, APPLY, changed)
        assert _code(body) == "CONFLICT" and body["data"] is None, body
        # One application, one key: no batch the client never sent is mentioned.
        message = body["errors"][0]["message"]
        assert "idempotencyKey was used for another card application" in message, message
        assert "batch" not in message, message
    assert [(o, c) for o, c, _ in await _audited(hub)][:2] == [("ERROR", ("CONFLICT",))] * 2


async def test_a_second_live_card_of_a_kind_is_a_conflict(
    hub: HubClient, simulators: Simulators
) -> None:
    (holder,) = _holders(simulators, "both", "duplicate")
    for kind in ("PHYSICAL", "ELECTRONIC"):
        body = await _call(hub, APPLY, _application(holder, kind))
        assert _code(body) == "CONFLICT", body
        assert "already holds a live" in body["errors"][0]["message"]
    outcome, codes, subjects = (await _audited(hub))[0]
    assert (outcome, codes) == ("ERROR", ("CONFLICT",)) and holder.ssn in subjects


async def test_a_client_without_card_write_is_refused_before_any_upstream_call(
    hub: HubClient, simulators: Simulators
) -> None:
    (holder,) = _holders(simulators, "none", "never_written")
    before = await simulators.upstream_calls()
    attempts = [
        (APPLY, _application(holder)),
        (APPLY_BATCH, {"employerCreditCode": holder.permit.employer.credit_code,
                       "idempotencyKey": _key(), "items": [_item(holder)]}),
        (UPDATE, {"cardNumber": "H10000001", "status": "CANCELLED"}),
    ]
    for client in ("exit-entry-wuhan", "si-agency-wuhan"):
        for query, given in attempts:
            response = await hub.graphql(client, query, {"i": given})
            assert response.status_code == 403 and _code(response.json()) == "FORBIDDEN"
    assert await simulators.upstream_calls() == before
    recorded = [(outcome, codes) for outcome, codes, _ in await _audited(hub)]
    assert recorded == [("DENIED", ("FORBIDDEN",))] * 6


# --- the lifecycle --------------------------------------------------------------------------


def _covering_paths(kind: CardKind) -> list[list[CardStatus]]:
    """Paths from birth, each ending in a terminal status, that together take every edge."""
    table = TRANSITIONS[kind]
    untaken = {(a, b) for a, following in table.items() for b in following}
    paths = []
    while untaken:
        a, b = min(untaken)
        path = [*_shortest(kind, BIRTH[kind][-1], a), b]
        while path[-1] not in TERMINAL:  # finish on an edge not yet taken, else cancel
            step = next((c for c in sorted(table[path[-1]]) if (path[-1], c) in untaken),
                        CardStatus.CANCELLED)
            untaken.discard((path[-1], step))
            path.append(step)
        untaken -= set(itertools.pairwise(path))
        paths.append(path)
    return paths


def _shortest(kind: CardKind, start: CardStatus, goal: CardStatus) -> list[CardStatus]:
    routes: deque[list[CardStatus]] = deque([[start]])
    while routes:
        route = routes.popleft()
        if route[-1] is goal:
            return route
        routes.extend([*route, n] for n in sorted(TRANSITIONS[kind][route[-1]]) if n not in route)
    raise AssertionError(f"{goal} unreachable")


@pytest.mark.parametrize(
    ("kind", "slice_name"),
    [("PHYSICAL", "lifecycle"), ("ELECTRONIC", "electronic_lifecycle")],
)
async def test_every_legal_transition_is_taken_and_an_illegal_one_changes_nothing(
    hub: HubClient, simulators: Simulators, kind: str, slice_name: str
) -> None:
    (holder,) = _holders(simulators, "none", slice_name)
    paths = _covering_paths(CardKind(kind))
    skipping = {"PHYSICAL": "ACTIVE", "ELECTRONIC": "REPORTED_LOST"}[kind]
    for path in paths:  # every path ends terminal: the holder may apply again
        card = (await _apply(hub, _application(holder, kind)))["card"]
        assert card["status"] == path[0]
        refused = await _move(hub, card["cardNumber"], skipping)
        assert _code(refused) == "CONFLICT" and refused["data"] is None, refused
        for status in path[1:]:
            body = await _move(hub, card["cardNumber"], status.value, reason="test step")
            assert "errors" not in body, (path, status, body)
            card = body["data"]["updateCardStatus"]["card"]
            assert card["status"] == status.value
        assert [h["status"] for h in card["history"]] == [s.value for s in BIRTH[CardKind(kind)]
                                                         ] + [s.value for s in path[1:]]
    taken = {edge for path in paths for edge in itertools.pairwise(path)}
    table = TRANSITIONS[CardKind(kind)]
    assert taken == {(a, b) for a, following in table.items() for b in following}

    last = card["cardNumber"]  # terminal now
    writes = (await _card_requests(simulators)).get("POST /cards/{number}/status", 0)
    for to, expected in (("ACTIVE", None), ("SUSPENDED", None), ("CANCELLED", "ACTIVE")):
        body = await _move(hub, last, to, **({"expectedStatus": expected} if expected else {}))
        assert _code(body) == "CONFLICT" and body["data"] is None, body
    assert (await _card_requests(simulators)).get("POST /cards/{number}/status", 0) == writes
    shown = await hub.graphql(CENTER, "query($s: ID!) { cards(ssn: $s) { cardNumber status } }",
                              {"s": holder.ssn})
    assert {"cardNumber": last, "status": card["status"]} in shown.json()["data"]["cards"]
    outcome, codes, subjects = (await _audited(hub))[1]  # [0] is the query just above
    assert (outcome, codes) == ("ERROR", ("CONFLICT",)) and holder.ssn in subjects


async def test_moving_an_unknown_card_is_not_found_and_a_malformed_one_bad_input(
    hub: HubClient, simulators: Simulators
) -> None:
    response = await hub.graphql(CENTER, UPDATE, {"i": {"cardNumber": "H99999999",
                                                       "status": "CANCELLED"}})
    body = response.json()
    # The payload is non-null in the schema, so its null makes `data` null, as for a CONFLICT.
    assert response.status_code == 200 and body["data"] is None, body
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "NOT_FOUND" and error["path"] == ["updateCardStatus"]
    assert "no card with this number" in error["message"]
    for bad in ("X1", "H1234567", "EH123456789", "H12345678 "):
        response = await hub.graphql(CENTER, UPDATE, {"i": {"cardNumber": bad,
                                                           "status": "CANCELLED"}})
        assert response.status_code == 400 and _code(response.json()) == "BAD_USER_INPUT"
    assert "POST /cards/{number}/status" not in await _card_requests(simulators)
    recorded = [(outcome, codes) for outcome, codes, _ in await _audited(hub)]
    assert recorded == [("ERROR", ("BAD_USER_INPUT",))] * 4 + [("ERROR", ("NOT_FOUND",))]


# --- the employer batch ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Batch:
    employer: str
    good: list[Holder]  # may have a card
    live: Holder  # of the employer, already holding a live physical card
    others: list[Holder]  # of other employers (with both kinds of live card)
    suspended: Holder


def _unenrolled_of(simulators: Simulators, employer: str) -> list[Permit]:
    """The employer's VALID permits without enrollment, minus those test_enrollment registers
    (the first hundred of its own ordering)."""
    dataset = simulators.dataset
    enrolled = {e.permit_number for e in dataset.enrollments.values()}
    samples = set(dataset.samples.values())
    fresh = sorted(
        (p for p in dataset.permits.values() if p.is_valid_on(dataset.today)
         and p.work_location in AGENCY_REGIONS and p.number not in enrolled
         and p.number not in samples),
        key=lambda p: p.number, reverse=True,
    )
    return [p for p in fresh[100:] if p.employer.credit_code == employer]


def _batch_data(simulators: Simulators) -> tuple[_Batch, list[Permit]]:
    """The employer with the most holders who may get a physical card and one who may not."""
    pools = _pools(simulators)
    free = pools["none"][_BATCH_FROM:] + pools.get("electronic", [])[_BATCH_FROM:]
    held = pools["both"][_BATCH_FROM:] + pools.get("physical", [])[_BATCH_FROM:]
    by_employer = {
        code: [h for h in free if h.permit.employer.credit_code == code]
        for code in {h.permit.employer.credit_code for h in held}
    }
    employer = max(
        by_employer,
        key=lambda code: (len(by_employer[code]) + len(_unenrolled_of(simulators, code)), code),
    )
    live = next(h for h in held if h.permit.employer.credit_code == employer)
    others = [h for h in _holders(simulators, "both", "batch")
              if h.permit.employer.credit_code != employer]
    (suspended,) = _holders(simulators, "suspended", "batch")
    batch = _Batch(employer, by_employer[employer], live, others, suspended)
    return batch, _unenrolled_of(simulators, employer)


async def _enroll(hub: HubClient, permits: list[Permit]) -> list[Holder]:
    holders = []
    for permit in permits:
        body = await _call(hub, REGISTER, {
            "permitNumber": permit.number, "region": permit.work_location,
            "name": permit.holder.name, "nationality": permit.holder.nationality,
            "idempotencyKey": _key(),
        }, client=si_agency_of(permit.number))
        holders.append(Holder(body["data"]["registerEnrollment"]["enrollment"]["ssn"], permit))
    return holders


async def test_an_employer_batch_reports_each_item_and_is_idempotent_as_a_whole(
    hub: HubClient, simulators: Simulators
) -> None:
    batch, unenrolled = _batch_data(simulators)
    good = (batch.good + await _enroll(hub, unenrolled))[:20]
    assert len(good) >= 10, "the dataset should give an employer ten holders to batch"
    others = batch.others
    bad = [  # (item, the code of its error)
        (_item(good[0], ssn=_wrong_check(good[0].ssn)), "BAD_USER_INPUT"),  # check character
        (_item(good[0], ssn="not-an-ssn"), "BAD_USER_INPUT"),
        (_item(good[1], ssn=UNKNOWN_SSN), "BAD_USER_INPUT"),  # no enrollment
        (_item(others[0], passportNumber="ZZ0000000"), "BAD_USER_INPUT"),  # identity mismatch
        (_item(others[1], name="Somebody Else"), "BAD_USER_INPUT"),
        (_item(others[2], nationality="ZZZ"), "BAD_USER_INPUT"),
        (_item(others[3]), "BAD_USER_INPUT"),  # a permit of another employer
        (_item(others[4]), "BAD_USER_INPUT"),
        (_item(batch.suspended), "BAD_USER_INPUT"),  # enrollment not ACTIVE
        (_item(batch.live), "CONFLICT"),  # already holds a live physical card
        (_item(good[2]), "CONFLICT"),  # twice in one batch: the first one's card is live now
    ]
    sloppy = _item(good[3], name=good[3].permit.holder.name.lower(),
                   passportNumber=" " + good[3].permit.holder.passport_number.lower())
    items = [_item(h) for h in good[:3]] + [sloppy] + [_item(h) for h in good[4:]]
    items += [item for item, _ in bad]
    expected_errors = {len(good) + i: code for i, (_, code) in enumerate(bad)}
    given = {"employerCreditCode": batch.employer, "idempotencyKey": _key(), "items": items}
    wms_before = (await simulators.stats(simulators.wms_url))["total"]
    cards_before = await _card_requests(simulators)

    body = await _call(hub, APPLY_BATCH, given)
    assert "errors" not in body, body
    payload = body["data"]["applyForCards"]
    results = payload["results"]
    assert [r["index"] for r in results] == list(range(len(items)))
    assert [r["ssn"] for r in results] == [i["ssn"] for i in items]
    failed = {r["index"]: r["error"]["code"] for r in results if r["error"]}
    assert failed == expected_errors, [r for r in results if r["error"]]
    made = [r for r in results if not r["error"]]
    assert all(r["created"] and r["card"]["status"] == "APPLIED" for r in made)
    assert all(r["card"]["channel"] == "EMPLOYER_BATCH" for r in made)
    assert all(r["card"] is None and not r["created"] for r in results if r["error"])
    assert (payload["total"], payload["created"], payload["replayed"], payload["failed"]) == (
        len(items), len(good), 0, len(expected_errors)
    )
    cards_after = await _card_requests(simulators)
    assert cards_after.get("POST /cards:apply", 0) == cards_before.get("POST /cards:apply", 0) + 1
    # And one batched read of the holders' cards under all their SSNs (one live card of a kind
    # per person); nothing else.
    assert cards_after.get("POST /cards:batch", 0) == cards_before.get("POST /cards:batch", 0) + 1
    assert sum(cards_after.values()) == sum(cards_before.values()) + 2
    # The permits, then the holders' other permits: one batched call each.
    assert (await simulators.stats(simulators.wms_url))["total"] - wms_before <= 2
    outcome, codes, subjects = (await _audited(hub))[0]
    assert (outcome, codes) == ("PARTIAL", tuple(sorted(set(expected_errors.values()))))
    assert {h.ssn for h in good} | {batch.live.ssn, others[0].ssn} <= set(subjects)

    again = (await _call(hub, APPLY_BATCH, given))["data"]["applyForCards"]
    assert [r | {"created": False} for r in again["results"]] == [
        r | {"created": False} for r in results
    ]
    assert not any(r["created"] for r in again["results"])
    assert (again["created"], again["replayed"], again["failed"]) == (0, len(good),
                                                                      len(expected_errors))
    for holder in good[:3]:
        shown = await hub.graphql(CENTER, "query($s: ID!) { cards(ssn: $s) { kind } }",
                                  {"s": holder.ssn})
        kinds = [c["kind"] for c in shown.json()["data"]["cards"]]
        assert kinds.count("PHYSICAL") == 1, holder

    changed = {**given, "items": items[:-1]}
    body = await _call(hub, APPLY_BATCH, changed)
    assert _code(body) == "CONFLICT" and body["data"] is None
    message = body["errors"][0]["message"]
    assert "idempotencyKey was used for another batch of card applications" in message, message
    assert (await _audited(hub))[0][:2] == ("ERROR", ("CONFLICT",))


async def test_a_batch_over_a_thousand_items_is_refused_whole_before_any_upstream_call(
    hub: HubClient, simulators: Simulators
) -> None:
    (holder,) = _holders(simulators, "none", "never_written")
    given = {
        "employerCreditCode": holder.permit.employer.credit_code,
        "idempotencyKey": _key(),
        "items": [_item(holder)] * 1001,
    }
    before = await simulators.upstream_calls()
    body = await _call(hub, APPLY_BATCH, given)
    assert _code(body) == "BAD_USER_INPUT" and body["data"] is None
    assert "1000" in body["errors"][0]["message"]
    empty = await _call(hub, APPLY_BATCH, {**given, "items": []})
    assert _code(empty) == "BAD_USER_INPUT"
    assert await simulators.upstream_calls() == before
    recorded = [(outcome, codes) for outcome, codes, _ in await _audited(hub)]
    assert recorded == [("ERROR", ("BAD_USER_INPUT",))] * 2


async def test_a_batch_with_a_malformed_employer_is_refused_before_execution(
    hub: HubClient, simulators: Simulators
) -> None:
    (holder,) = _holders(simulators, "none", "never_written")
    given = {"employerCreditCode": "91420100MA4K00000X", "idempotencyKey": _key(),
             "items": [_item(holder)]}
    before = await simulators.upstream_calls()
    response = await hub.graphql(CENTER, APPLY_BATCH, {"i": given})
    assert response.status_code == 400 and _code(response.json()) == "BAD_USER_INPUT"
    assert await simulators.upstream_calls() == before
