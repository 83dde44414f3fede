"""Issue 6, item 1: a faulty source system costs only the fields it serves (outcome PARTIAL).

Every fault mode of the simulators (latency past the deadline, errors, hang, connection reset,
malformed JSON) is injected into the real card-system server; the hub answers the permit from
the WMS, puts a typed error at the cards' path, and audits the request as PARTIAL with that
code. The breaker then stops calling the broken system, and lets it back once it heals.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from observability.audit import AuditFilter
from tests.conftest import HubClient, Simulators, open_hub

QUERY = """query($n: ID!, $s: ID!) {
  permit(number: $n) { number status cards { status } }
  enrollment(ssn: $s) { ssn cards { kind } }
}"""
CLIENT = "ssc-card-center-hubei"  # permit:validity enrollment:read card:status
TIMEOUT = 0.5


class BreakerClock:
    """The breakers' clock: the real one, plus the time a test moves it on by, so a test waits
    out an open period without sleeping while deadlines and retries run as they would."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


@pytest.fixture
def breaker_clock() -> BreakerClock:
    return BreakerClock()


@pytest.fixture
async def guarded(
    simulators: Simulators, database_url: str, tmp_path: Path, breaker_clock: BreakerClock
) -> AsyncIterator[HubClient]:
    async with open_hub(
        simulators, database_url, tmp_path, upstream_clock=breaker_clock,
        upstream_timeout_seconds=TIMEOUT, upstream_retries=2,
        breaker_failure_threshold=3, breaker_open_seconds=0.5,
    ) as client:
        try:
            yield client
        finally:
            await simulators.reset()


async def _fault(simulators: Simulators, **fault: Any) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.post(simulators.cards_url + "/_sim/faults", json=fault)
        assert response.status_code == 200, response.text


def _variables(simulators: Simulators) -> dict[str, str]:
    samples = simulators.dataset.samples
    return {"n": samples["enrolled_permit"], "s": samples["enrolled_ssn"]}


async def _last_record(hub: HubClient) -> Any:
    page = await hub.hub.audit.search(
        AuditFilter(client_id=CLIENT), 1, None, subject_view=False, today=dt.date.today()
    )
    return page.records[0]


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        ({"error_rate": 1.0}, "UPSTREAM_UNAVAILABLE"),
        ({"reset": True}, "UPSTREAM_UNAVAILABLE"),
        ({"bad_json": True}, "UPSTREAM_UNAVAILABLE"),
        ({"hang": True}, "UPSTREAM_TIMEOUT"),
        ({"latency_ms": 2000}, "UPSTREAM_TIMEOUT"),
    ],
    ids=["errors", "reset", "bad-json", "hang", "slow"],
)
async def test_a_faulty_card_system_costs_only_its_fields(
    guarded: HubClient, simulators: Simulators, fault: dict[str, Any], code: str
) -> None:
    await _fault(simulators, **fault)
    started = time.perf_counter()
    response = await guarded.graphql(CLIENT, QUERY, _variables(simulators))
    elapsed = time.perf_counter() - started

    assert response.status_code == 200
    body = response.json()
    permit = body["data"]["permit"]
    assert (permit["number"], permit["status"]) == (_variables(simulators)["n"], "VALID")
    assert permit["cards"] is None and body["data"]["enrollment"]["cards"] is None
    assert body["data"]["enrollment"]["ssn"] == _variables(simulators)["s"]  # an agency's data
    assert {tuple(e["path"]) for e in body["errors"]} == {
        ("permit", "cards"), ("enrollment", "cards")
    }
    assert {e["extensions"]["code"] for e in body["errors"]} == {code}
    assert all("127.0.0.1" not in e["message"] for e in body["errors"])  # no upstream address
    assert elapsed < TIMEOUT + 1.5  # bounded by the deadline (the figure is in bench/)
    record = await _last_record(guarded)
    assert (record.outcome, record.error_codes) == ("PARTIAL", (code,))


async def test_transient_errors_are_retried_away(
    guarded: HubClient, simulators: Simulators
) -> None:
    await _fault(simulators, error_rate=0.3, seed=7)  # seeded: the same faults every run
    answers = [await guarded.graphql(CLIENT, QUERY, _variables(simulators)) for _ in range(5)]
    stats = await simulators.stats(simulators.cards_url)
    assert all("errors" not in r.json() for r in answers)
    assert stats["requests"]["POST /cards:batch"] > 5  # some calls needed a second attempt


async def test_the_breaker_stops_calling_a_dead_system_and_lets_it_back(
    guarded: HubClient, simulators: Simulators, breaker_clock: BreakerClock
) -> None:
    await _fault(simulators, error_rate=1.0)
    for _ in range(3):  # three failed calls (of three attempts each): the breaker opens
        await guarded.graphql(CLIENT, "query($s: ID!) { cards(ssn: $s) { kind } }",
                              {"s": _variables(simulators)["s"]})
    calls = (await simulators.stats(simulators.cards_url))["total"]
    refused = await guarded.graphql(CLIENT, QUERY, _variables(simulators))
    assert (await simulators.stats(simulators.cards_url))["total"] == calls  # failed fast
    assert {e["extensions"]["code"] for e in refused.json()["errors"]} == {"UPSTREAM_UNAVAILABLE"}
    assert refused.json()["data"]["permit"]["status"] == "VALID"

    await simulators.reset()  # the card system heals
    breaker_clock.advance(0.5)  # the breaker's open period (settings above)
    healed = await guarded.graphql(CLIENT, QUERY, _variables(simulators))
    assert "errors" not in healed.json()
    assert healed.json()["data"]["enrollment"]["cards"]


async def test_a_down_card_system_does_not_touch_queries_of_the_wms(
    guarded: HubClient, simulators: Simulators
) -> None:
    await _fault(simulators, hang=True)
    response = await guarded.graphql(
        CLIENT, "query($n: ID!) { permit(number: $n) { status } }",
        {"n": _variables(simulators)["n"]},
    )
    assert response.status_code == 200 and "errors" not in response.json()
    assert (await _last_record(guarded)).outcome == "OK"
