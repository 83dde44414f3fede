"""The /_sim controls every simulator carries: counters, and each fault over real HTTP."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from simulators import Dataset

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


async def _set_faults(client: httpx.AsyncClient, **faults: object) -> None:
    response = await client.post("/_sim/faults", json=faults)
    assert response.status_code == 200, response.text


async def test_requests_are_counted_by_route_template(
    wms: httpx.AsyncClient, dataset: Dataset
) -> None:
    s = dataset.samples
    await wms.get(f"/permits/{s['valid_permit']}", headers={"traceparent": TRACEPARENT})
    await wms.get(f"/permits/{s['expired_permit']}")
    await wms.post("/permits:batch", json={"numbers": [s["valid_permit"]]})
    await wms.get("/healthz")
    await wms.get("/_sim/faults")
    stats = (await wms.get("/_sim/stats")).json()
    assert stats["requests"] == {"GET /permits/{number}": 2, "POST /permits:batch": 1}
    assert stats["total"] == 3
    assert stats["traceparents"] == [TRACEPARENT]


async def test_counters_reset(wms: httpx.AsyncClient, dataset: Dataset) -> None:
    await wms.get(f"/permits/{dataset.samples['valid_permit']}")
    assert (await wms.post("/_sim/stats/reset")).status_code == 200
    stats = (await wms.get("/_sim/stats")).json()
    assert stats == {"requests": {}, "total": 0, "traceparents": []}


async def test_only_the_last_fifty_traceparents_are_kept(cards: httpx.AsyncClient) -> None:
    for n in range(55):
        await cards.get("/cards", params={"ssn": "x"}, headers={"traceparent": f"tp-{n}"})
    traceparents = (await cards.get("/_sim/stats")).json()["traceparents"]
    assert traceparents == [f"tp-{n}" for n in range(5, 55)]


async def test_latency_delays_answers(wms: httpx.AsyncClient, dataset: Dataset) -> None:
    await _set_faults(wms, latency_ms=200)
    started = time.perf_counter()
    response = await wms.get(f"/permits/{dataset.samples['valid_permit']}")
    assert response.status_code == 200
    assert time.perf_counter() - started >= 0.2


async def test_error_rate_one_always_answers_503(cards: httpx.AsyncClient) -> None:
    await _set_faults(cards, error_rate=1.0)
    for _ in range(3):
        assert (await cards.post("/cards:batch", json={"ssns": []})).status_code == 503
    assert (await cards.get("/healthz")).status_code == 200  # health is never faulted
    assert (await cards.get("/_sim/stats")).json()["total"] == 3  # faulted requests still count


async def test_error_rate_is_seeded(cards: httpx.AsyncClient) -> None:
    async def outcomes() -> list[int]:
        await _set_faults(cards, error_rate=0.5, seed=42)
        return [(await cards.get("/cards", params={"ssn": "x"})).status_code for _ in range(20)]

    first = await outcomes()
    assert first == await outcomes()
    assert {200, 503} == set(first)


async def test_bad_json_answers_200_with_a_body_that_is_not_json(
    wms: httpx.AsyncClient, dataset: Dataset
) -> None:
    await _set_faults(wms, bad_json=True)
    response = await wms.post("/permits:batch", json={"numbers": [dataset.samples["valid_permit"]]})
    assert response.status_code == 200
    with pytest.raises(ValueError):
        response.json()


async def test_hang_never_answers_until_cleared(wms: httpx.AsyncClient, dataset: Dataset) -> None:
    await _set_faults(wms, hang=True)
    with pytest.raises(httpx.ReadTimeout):
        await wms.get(f"/permits/{dataset.samples['valid_permit']}", timeout=0.3)
    assert (await wms.delete("/_sim/faults")).json()["hang"] is False
    assert (await wms.get(f"/permits/{dataset.samples['valid_permit']}")).status_code == 200


async def test_a_held_request_is_answered_in_full_once_released(
    wms: httpx.AsyncClient, dataset: Dataset
) -> None:
    await _set_faults(wms, hang=True)
    number = dataset.samples["valid_permit"]
    held = asyncio.create_task(wms.post("/permits:batch", json={"numbers": [number]}))
    await asyncio.sleep(0.2)
    assert not held.done()
    await wms.delete("/_sim/faults")
    response = await asyncio.wait_for(held, timeout=5)
    assert response.json()["permits"][0]["number"] == number


async def test_reset_drops_the_connection_without_a_response(
    wms: httpx.AsyncClient, dataset: Dataset
) -> None:
    await _set_faults(wms, reset=True)
    with pytest.raises(httpx.RemoteProtocolError):
        await wms.get(f"/permits/{dataset.samples['valid_permit']}")
    await wms.delete("/_sim/faults")
    assert (await wms.get(f"/permits/{dataset.samples['valid_permit']}")).status_code == 200


@pytest.mark.parametrize(
    "body",
    [{"error_rate": 2}, {"latency_ms": -1}, {"hang": "yes"}, {"explode": True}, {"seed": "x"}, []],
)
async def test_invalid_faults_are_refused(wms: httpx.AsyncClient, body: object) -> None:
    response = await wms.post("/_sim/faults", json=body)
    assert response.status_code == 400
    assert (await wms.get("/_sim/faults")).json()["error_rate"] == 0.0


async def test_unknown_control_route_is_404(wms: httpx.AsyncClient) -> None:
    assert (await wms.get("/_sim/nothing")).status_code == 404
