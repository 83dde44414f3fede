from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from connectors.identifiers import make_ssn, validate_card_number
from connectors.records import CardApplicationResult, CardChannel, CardKind, CardStatus
from connectors.wire import application_result_from_wire, card_from_wire
from simulators import Dataset

UNKNOWN = make_ssn("420100", 99_999_999_999)


async def test_cards_of_one_ssn(cards: httpx.AsyncClient, dataset: Dataset) -> None:
    ssn = dataset.samples["enrolled_ssn"]
    response = await cards.get("/cards", params={"ssn": ssn})
    found = tuple(card_from_wire(c) for c in response.json()["cards"])
    assert found == dataset.cards[ssn]


async def test_unknown_ssn_has_no_cards(cards: httpx.AsyncClient) -> None:
    assert (await cards.get("/cards", params={"ssn": UNKNOWN})).json() == {"cards": []}


async def test_missing_ssn_parameter_is_400(cards: httpx.AsyncClient) -> None:
    assert (await cards.get("/cards")).status_code == 400


async def test_batch_answers_every_requested_ssn(
    cards: httpx.AsyncClient, dataset: Dataset
) -> None:
    ssn = dataset.samples["enrolled_ssn"]
    response = await cards.post("/cards:batch", json={"ssns": [ssn, UNKNOWN]})
    by_ssn = response.json()["cards"]
    assert set(by_ssn) == {ssn, UNKNOWN}
    assert by_ssn[UNKNOWN] == []
    assert tuple(card_from_wire(c) for c in by_ssn[ssn]) == dataset.cards[ssn]


async def test_batch_refuses_more_than_500(cards: httpx.AsyncClient) -> None:
    ssns = [make_ssn("420100", n) for n in range(501)]
    assert (await cards.post("/cards:batch", json={"ssns": ssns[:500]})).status_code == 200
    assert (await cards.post("/cards:batch", json={"ssns": ssns})).status_code == 400


# --- writes: applications, one card by number, compare-and-set status changes ------------------


def _application(ssn: str, key: str, kind: str = "PHYSICAL", digest: str = "h1") -> dict[str, Any]:
    channel = "ONLINE" if kind == "ELECTRONIC" else "IN_PERSON"
    return {
        "ssn": ssn, "kind": kind, "channel": channel, "region": ssn[:6],
        "idempotencyKey": key, "requestHash": digest,
    }


async def _apply(
    cards: httpx.AsyncClient, *applications: dict[str, Any], batch: str = "b1", digest: str = "bh"
) -> httpx.Response:
    body = {"batchKey": batch, "batchHash": digest, "applications": list(applications)}
    return await cards.post("/cards:apply", json=body)


async def _results(
    cards: httpx.AsyncClient, *applications: dict[str, Any], **batch: str
) -> list[CardApplicationResult]:
    response = await _apply(cards, *applications, **batch)
    assert response.status_code == 200, response.text
    return [application_result_from_wire(r) for r in response.json()["results"]]


async def _move(
    cards: httpx.AsyncClient, number: str, from_: str, to: str, reason: str | None = None
) -> httpx.Response:
    return await cards.post(
        f"/cards/{number}/status", json={"from": from_, "to": to, "reason": reason}
    )


def _fresh_ssn(n: int) -> str:
    return make_ssn("420100", 88_000_000_000 + n)


async def test_a_new_physical_card_starts_applied_and_is_served_everywhere(
    cards: httpx.AsyncClient,
) -> None:
    ssn = _fresh_ssn(1)
    (result,) = await _results(cards, _application(ssn, "k1"))
    card = result.card
    assert result.created and result.conflict is None and card is not None
    assert (card.kind, card.status, card.issued_on) == (CardKind.PHYSICAL, CardStatus.APPLIED, None)
    assert [h.status for h in card.history] == [CardStatus.APPLIED]
    assert validate_card_number(card.card_number).startswith("H")
    assert card.region == "420100" and card.channel is CardChannel.IN_PERSON
    one = await cards.get(f"/cards/{card.card_number}")
    assert card_from_wire(one.json()["card"]) == card
    by_ssn = (await cards.post("/cards:batch", json={"ssns": [ssn]})).json()["cards"][ssn]
    assert [card_from_wire(c) for c in by_ssn] == [card]


async def test_a_new_electronic_card_is_active_at_once(cards: httpx.AsyncClient) -> None:
    (result,) = await _results(cards, _application(_fresh_ssn(2), "k1", "ELECTRONIC"))
    card = result.card
    assert card is not None and card.card_number.startswith("EH") and len(card.card_number) == 12
    assert card.status is CardStatus.ACTIVE and card.issued_on is not None
    assert [h.status for h in card.history] == [
        CardStatus.APPLIED, CardStatus.ISSUED, CardStatus.ACTIVE,
    ]
    assert len({h.at for h in card.history}) == 1


async def test_new_card_numbers_never_reuse_a_dataset_number(
    cards: httpx.AsyncClient, dataset: Dataset
) -> None:
    taken = {c.card_number for cs in dataset.cards.values() for c in cs}
    results = await _results(
        cards, _application(_fresh_ssn(3), "k1"), _application(_fresh_ssn(3), "k2", "ELECTRONIC")
    )
    assert all(r.card is not None and r.card.card_number not in taken for r in results)


async def test_a_reused_item_key_gives_the_first_card_or_a_conflict(
    cards: httpx.AsyncClient,
) -> None:
    ssn = _fresh_ssn(4)
    (first,) = await _results(cards, _application(ssn, "k1"), batch="b1")
    (again,) = await _results(cards, _application(ssn, "k1"), batch="b2")
    (other,) = await _results(cards, _application(ssn, "k1", digest="h2"), batch="b3")
    assert (again.card, again.created) == (first.card, False)
    assert other.card is None and not other.created and other.conflict
    assert len((await cards.get("/cards", params={"ssn": ssn})).json()["cards"]) == 1


async def test_a_second_live_card_of_a_kind_is_a_conflict_but_another_kind_is_not(
    cards: httpx.AsyncClient, dataset: Dataset
) -> None:
    ssn = _fresh_ssn(5)
    results = await _results(
        cards, _application(ssn, "k1"), _application(ssn, "k2"),
        _application(ssn, "k3", "ELECTRONIC"),
    )
    assert [r.created for r in results] == [True, False, True]
    assert results[1].conflict == "the SSN already holds a live PHYSICAL card"
    held = next(
        c for cs in dataset.cards.values() for c in cs
        if c.kind is CardKind.PHYSICAL and c.status is CardStatus.ACTIVE
    )
    (dataset_conflict,) = await _results(cards, _application(held.ssn, "k4"), batch="b2")
    assert dataset_conflict.conflict is not None


async def test_a_card_no_longer_live_lets_the_holder_apply_again(cards: httpx.AsyncClient) -> None:
    ssn = _fresh_ssn(6)
    (first,) = await _results(cards, _application(ssn, "k1"), batch="b1")
    assert first.card is not None
    assert (await _move(cards, first.card.card_number, "APPLIED", "CANCELLED")).status_code == 200
    (second,) = await _results(cards, _application(ssn, "k2"), batch="b2")
    assert second.created and second.card is not None
    assert second.card.card_number != first.card.card_number


async def test_a_batch_key_with_another_batch_hash_is_refused_whole(
    cards: httpx.AsyncClient,
) -> None:
    ssn = _fresh_ssn(7)
    await _results(cards, _application(ssn, "k1"), batch="b1", digest="one")
    response = await _apply(cards, _application(_fresh_ssn(8), "k2"), batch="b1", digest="two")
    assert response.status_code == 409 and response.json()["error"] == "conflict"
    assert (await cards.get("/cards", params={"ssn": _fresh_ssn(8)})).json() == {"cards": []}
    (replayed,) = await _results(cards, _application(ssn, "k1"), batch="b1", digest="one")
    assert not replayed.created and replayed.card is not None


@pytest.mark.parametrize("count", [0, 1001])
async def test_a_batch_holds_one_to_a_thousand_applications(
    cards: httpx.AsyncClient, count: int
) -> None:
    applications = [_application(_fresh_ssn(n), f"k{n}") for n in range(count)]
    assert (await _apply(cards, *applications)).status_code == 400


async def test_a_thousand_applications_are_answered_in_one_call_in_order(
    cards: httpx.AsyncClient,
) -> None:
    applications = [_application(_fresh_ssn(1000 + n), f"k{n}") for n in range(1000)]
    results = await _results(cards, *applications)
    assert [r.card.ssn for r in results if r.card] == [a["ssn"] for a in applications]
    stats = (await cards.get("/_sim/stats")).json()
    assert stats["requests"] == {"POST /cards:apply": 1}


@pytest.mark.parametrize(
    "broken",
    [
        {"ssn": "420100000000000000"},  # bad check character
        {"kind": "PLASTIC"},
        {"idempotencyKey": ""},
        {"requestHash": None},
    ],
)
async def test_a_malformed_application_is_a_bad_request(
    cards: httpx.AsyncClient, broken: dict[str, Any]
) -> None:
    application = _application(_fresh_ssn(9), "k1") | broken
    assert (await _apply(cards, application)).status_code == 400


async def test_twenty_parallel_applications_with_one_key_make_one_card(
    cards: httpx.AsyncClient,
) -> None:
    ssn = _fresh_ssn(10)
    answers = await asyncio.gather(
        *(_results(cards, _application(ssn, "k1"), batch="b1") for _ in range(20))
    )
    numbers = {r.card.card_number for (r,) in answers if r.card}
    assert sum(r.created for (r,) in answers) == 1 and len(numbers) == 1


async def test_an_unknown_card_is_404(cards: httpx.AsyncClient) -> None:
    assert (await cards.get("/cards/H99999999")).status_code == 404
    assert (await _move(cards, "H99999999", "APPLIED", "CANCELLED")).status_code == 404


async def test_a_status_change_follows_the_lifecycle_as_compare_and_set(
    cards: httpx.AsyncClient,
) -> None:
    (result,) = await _results(cards, _application(_fresh_ssn(11), "k1"))
    assert result.card is not None
    number = result.card.card_number
    for from_, to in (("APPLIED", "IN_PRODUCTION"), ("IN_PRODUCTION", "ISSUED")):
        response = await _move(cards, number, from_, to, reason="batch 7")
        assert response.status_code == 200, response.text
    card = card_from_wire(response.json()["card"])
    assert card.status is CardStatus.ISSUED and card.issued_on is not None
    assert card.history[-1].reason == "batch 7"
    stale = await _move(cards, number, "APPLIED", "IN_PRODUCTION")
    illegal = await _move(cards, number, "ISSUED", "REPLACED")
    assert (stale.status_code, illegal.status_code) == (409, 409)
    assert "not APPLIED" in stale.json()["detail"]
    assert card_from_wire((await cards.get(f"/cards/{number}")).json()["card"]) == card


async def test_a_status_change_with_a_bad_body_is_400(cards: httpx.AsyncClient) -> None:
    (result,) = await _results(cards, _application(_fresh_ssn(12), "k1"))
    assert result.card is not None
    number = result.card.card_number
    for body in ({"from": "APPLIED"}, {"from": "APPLIED", "to": "LOST"}, [1]):
        assert (await cards.post(f"/cards/{number}/status", json=body)).status_code == 400


async def test_writes_are_counted_by_route(cards: httpx.AsyncClient) -> None:
    (result,) = await _results(cards, _application(_fresh_ssn(13), "k1"))
    assert result.card is not None
    await cards.get(f"/cards/{result.card.card_number}")
    await _move(cards, result.card.card_number, "APPLIED", "CANCELLED")
    assert (await cards.get("/_sim/stats")).json()["requests"] == {
        "GET /cards/{number}": 1,
        "POST /cards/{number}/status": 1,
        "POST /cards:apply": 1,
    }
