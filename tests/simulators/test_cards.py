from __future__ import annotations

import httpx

from connectors.identifiers import make_ssn
from connectors.simulators import Dataset
from connectors.wire import card_from_wire

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
