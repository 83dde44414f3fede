"""A page of permits answers what its permits answer one by one, and audits the same subjects.

`permits(numbers:)` loads the links its document selects (enrollment, cards) for the whole page
before any permit resolves (`schema.links`): only those the document selects, and a failed
source system still costs only the fields it serves, permit by permit.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.identifiers import mod11_2_check_char
from observability.audit import AuditFilter
from simulators import Dataset
from tests.conftest import HubClient, Simulators, SqlCounter, open_hub

CLIENT = "ssc-card-center-hubei"  # permit:validity enrollment:read card:status card:read
FIELDS = "number status enrollment { ssn status } cards { cardNumber status }"
BATCH = f"query Batch($ns: [ID!]!) {{ permits(numbers: $ns) {{ {FIELDS} }} }}"
ONE = f"query One($n: ID!) {{ permit(number: $n) {{ {FIELDS} }} }}"


def _unknown(dataset: Dataset) -> str:
    """A well-formed permit number the WMS does not know."""
    valid = dataset.samples["valid_permit"]
    body = valid[:10] + ("9999999" if valid[10:17] != "9999999" else "9999998")
    return body + mod11_2_check_char(body)


def _page(dataset: Dataset) -> list[str]:
    """500 numbers spread over the dataset (every region, enrolled or not) and one unknown."""
    numbers = sorted(dataset.permits)
    return [*numbers[:: len(numbers) // 499][:499], _unknown(dataset)]


async def _subjects(hub: HubClient, operation: str, count: int) -> set[str]:
    page = await hub.hub.audit.search(
        AuditFilter(client_id=CLIENT, operation=operation), count, None,
        subject_view=False, today=dt.date.today(),
    )
    assert len(page.records) == count
    return {s for record in page.records for s in record.subjects}


async def test_a_page_of_500_answers_what_each_permit_answers_alone(
    hub: HubClient, simulators: Simulators
) -> None:
    numbers = _page(simulators.dataset)
    batch = await hub.graphql(CLIENT, BATCH, {"ns": numbers})
    assert batch.status_code == 200 and "errors" not in batch.json(), batch.text[:500]
    singles: list[httpx.Response] = []
    for start in range(0, len(numbers), 50):
        singles += await asyncio.gather(
            *(hub.graphql(CLIENT, ONE, {"n": n}) for n in numbers[start : start + 50])
        )
    assert all(r.status_code == 200 and "errors" not in r.json() for r in singles)

    permits = batch.json()["data"]["permits"]
    assert permits == [r.json()["data"]["permit"] for r in singles]
    assert permits[-1] is None
    assert any(p["enrollment"] for p in permits[:-1]) and any(p["cards"] for p in permits[:-1])
    assert await _subjects(hub, "Batch", 1) == await _subjects(hub, "One", len(numbers))


async def test_links_the_document_does_not_select_are_not_loaded(
    hub: HubClient, simulators: Simulators
) -> None:
    numbers = _page(simulators.dataset)
    query = """query($ns: [ID!]!, $cards: Boolean!) { permits(numbers: $ns) {
                 number enrollment @skip(if: true) { ssn } ...Cards @include(if: $cards) } }
               fragment Cards on WorkPermit { cards { status } }"""
    sql = SqlCounter(hub.hub)

    skipped = await hub.graphql(CLIENT, query, {"ns": numbers, "cards": False})
    assert skipped.status_code == 200 and "errors" not in skipped.json()
    assert all(set(p) == {"number"} for p in skipped.json()["data"]["permits"][:-1])
    assert sql.counts == {}
    assert (await simulators.stats(simulators.cards_url))["total"] == 0

    selected = await hub.graphql(CLIENT, query, {"ns": numbers, "cards": True})
    assert selected.status_code == 200 and "errors" not in selected.json()
    assert any(p["cards"] for p in selected.json()["data"]["permits"][:-1])
    assert sql.counts == {region: 1 for region in simulators.agency_urls}
    cards = await simulators.stats(simulators.cards_url)
    assert cards["requests"] == {"POST /cards:batch": 1}


@pytest.fixture
async def guarded(
    simulators: Simulators, database_url: str, tmp_path: Path
) -> AsyncIterator[HubClient]:
    async with open_hub(
        simulators, database_url, tmp_path,
        upstream_timeout_seconds=0.5, upstream_retries=1, breaker_failure_threshold=3,
    ) as client:
        try:
            yield client
        finally:
            await simulators.reset()


async def test_a_failed_card_system_costs_each_permit_of_a_page_its_cards_only(
    guarded: HubClient, simulators: Simulators
) -> None:
    async with httpx.AsyncClient() as client:
        fault = await client.post(simulators.cards_url + "/_sim/faults", json={"error_rate": 1.0})
        assert fault.status_code == 200
    numbers = _page(simulators.dataset)
    response = await guarded.graphql(CLIENT, BATCH, {"ns": numbers})

    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    permits = body["data"]["permits"]
    enrolled = [i for i, p in enumerate(permits) if p is not None and p["enrollment"]]
    assert enrolled and all(permits[i]["cards"] is None for i in enrolled)
    assert all(p is None or p["enrollment"] or p["cards"] == [] for p in permits)
    assert [p and p["number"] for p in permits] == [*numbers[:-1], None]
    assert sorted(tuple(e["path"]) for e in body["errors"]) == [
        ("permits", i, "cards") for i in enrolled
    ]
    assert {e["extensions"]["code"] for e in body["errors"]} == {"UPSTREAM_UNAVAILABLE"}


async def test_a_page_with_bad_numbers_is_refused_naming_each_bad_item_before_any_upstream_call(
    hub: HubClient, simulators: Simulators
) -> None:
    numbers = _page(simulators.dataset)
    typo = numbers[3][:17] + ("0" if mod11_2_check_char(numbers[3][:17]) != "0" else "1")
    numbers[3] = typo  # one wrong check character
    numbers[7] = "x" * 300  # too long to echo back
    calls = await simulators.upstream_calls()
    response = await hub.graphql(CLIENT, BATCH, {"ns": numbers})
    assert response.status_code == 400, response.text[:500]
    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "item 3" in error["message"] and typo in error["message"], error["message"]
    assert "1 more" in error["message"] and "x" * 41 not in error["message"]
    assert error["extensions"]["invalidCount"] == 2
    first, second = error["extensions"]["invalid"]
    assert first == {"index": 3, "value": typo,
                     "reason": "invalid permit number: check character does not match"}
    assert second["index"] == 7 and second["value"] == "(value not shown)"
    assert second["reason"].startswith("invalid permit number: expected 18 characters")
    assert await simulators.upstream_calls() == calls  # refused whole, nothing asked
    page = await hub.hub.audit.search(
        AuditFilter(client_id=CLIENT), 1, None, subject_view=False, today=dt.date.today(),
    )
    (record,) = page.records  # the newest
    assert (record.outcome, tuple(record.error_codes)) == ("ERROR", ("BAD_USER_INPUT",))
