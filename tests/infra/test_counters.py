"""The per-minute counters: a client's count in its window, refused past the limit; counted in
each process at once and reconciled through Redis, within the overshoot README.md states.

Two instances are two `Counters` on two connections to one Redis under one prefix (the shared
one of HUB_TEST_REDIS_URL, or a private redis-server without it). The tests wait for syncs by
counting them (`Counters.syncs`), never for a time; a deadline only stops a hung test.
"""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import pytest
import redis.asyncio as redis_async

from infra.counters import CostBudget, Counters, RateLimit
from infra.kv import KeyValue, MemoryKeyValue, RedisKeyValue
from tests.services import REDIS_URL, private_redis

WINDOW = 10  # the window of `_at_605`, five seconds into it: no test crosses a boundary
SYNC = 0.02


def _at_605() -> float:
    return 605.0


async def _synced(*counters: Counters, times: int = 2) -> None:
    """Until each has made `times` more syncs, so one begun after this call was made."""
    targets = [c.syncs + times for c in counters]
    async with asyncio.timeout(30):
        # The counters offer a count of their syncs, not an event to wait on.
        pending = list(zip(counters, targets, strict=True))
        while any(c.syncs < t for c, t in pending):  # noqa: ASYNC110
            await asyncio.sleep(SYNC / 2)


@pytest.fixture
async def instances() -> AsyncIterator[tuple[Counters, Counters, KeyValue]]:
    """Two instances' counters on one Redis, syncing every 20 ms, and a view of that Redis."""
    prefix = f"test:{uuid.uuid4().hex[:12]}:"
    async with AsyncExitStack() as stack:
        url = REDIS_URL if REDIS_URL else await stack.enter_async_context(private_redis())
        stores = [RedisKeyValue(redis_async.Redis.from_url(url), prefix) for _ in range(3)]
        for store in stores:
            stack.push_async_callback(store.close)
        stack.push_async_callback(_drop, url, prefix)
        first, second = (Counters(store, SYNC) for store in stores[:2])
        for counters in (first, second):
            counters.start()
            stack.push_async_callback(counters.close)
        yield first, second, stores[2]


async def _drop(url: str, prefix: str) -> None:
    client = redis_async.Redis.from_url(url)
    try:
        keys = [k async for k in client.scan_iter(match=prefix + "*", count=500)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


# -- one process: exact ---------------------------------------------------------------------------


@pytest.mark.parametrize("amounts", [[100, 100], [150, 60]])
async def test_cost_budget_refuses_past_the_minute_budget(amounts: list[int]) -> None:
    budget = CostBudget(Counters(MemoryKeyValue(), SYNC), per_minute=200)
    first = budget.charge("c", amounts[0], now=600.0)
    second = budget.charge("c", amounts[1], now=615.0)
    assert first.allowed
    assert second.allowed == (sum(amounts) <= 200)
    if not second.allowed:
        assert second.retry_after == 45
    assert budget.charge("other", 10, now=615.0).allowed
    assert budget.charge("c", 10, now=660.0).allowed  # a new window


async def test_the_rate_limit_counts_requests_in_the_clocks_window() -> None:
    now = [600.0]
    limit = RateLimit(Counters(MemoryKeyValue(), SYNC), per_minute=2, clock=lambda: now[0])
    assert limit.charge("c", 1).allowed
    now[0] = 640.0
    assert limit.charge("c", 1).allowed
    refused = limit.charge("c", 1)
    assert not refused.allowed and refused.spent == 3 and refused.retry_after == 20
    now[0] = 660.0  # the next window
    assert limit.charge("c", 1).allowed


async def test_one_instance_counts_exactly_whether_or_not_it_syncs(
    instances: tuple[Counters, Counters, KeyValue],
) -> None:
    """One process on the in-process store, or alone on Redis: the limit, not one more."""
    alone = instances[0]
    embedded = Counters(MemoryKeyValue(), SYNC)
    embedded.start()
    try:
        for counters in (embedded, alone):
            limit = RateLimit(counters, per_minute=5, clock=_at_605)
            decisions = []
            for n in range(8):
                decisions.append(limit.charge("c", 1))
                if n % 3 == 2:
                    await _synced(counters)
            assert [d.allowed for d in decisions] == [True] * 5 + [False] * 3
            assert decisions[-1].retry_after == 55
    finally:
        await embedded.close()


# -- several instances: the overshoot -------------------------------------------------------------


async def test_two_instances_together_admit_at_most_the_documented_overshoot(
    instances: tuple[Counters, Counters, KeyValue],
) -> None:
    """README: what one instance cannot see is what the other counted within two of its syncs.
    Here each instance takes a burst per round, then both sync twice: an instance decides on
    the other's counts up to the round before at worst, so the overshoot is at most what the
    other took in two rounds (its previous burst and the one beside this one)."""
    first, second, store = instances
    per_minute, burst = 100, 7
    limits = [RateLimit(c, per_minute, clock=_at_605) for c in (first, second)]
    sent = admitted = 0
    for _ in range(100):
        decisions = [limit.charge("c", 1) for limit in limits for _ in range(burst)]
        sent += len(decisions)
        admitted += sum(d.allowed for d in decisions)
        if not any(d.allowed for d in decisions):
            break
        await _synced(first, second)
    assert per_minute <= admitted <= per_minute + 2 * burst
    # Nothing counted is lost or counted twice: every request sent is in the shared count.
    await _synced(first, second)
    assert await store.get(f"rate:c:{WINDOW}") == str(sent).encode()


async def test_a_client_over_its_limit_on_one_instance_is_refused_on_another_after_a_sync(
    instances: tuple[Counters, Counters, KeyValue],
) -> None:
    first, second, _ = instances
    on_first, on_second = (RateLimit(c, 5, clock=_at_605) for c in (first, second))
    known = on_second.charge("known", 1)  # a client the second instance has counted before
    assert known.allowed
    for client in ("known", "new"):  # the first instance has not heard of that one yet
        assert [on_first.charge(client, 1).allowed for _ in range(6)] == [True] * 5 + [False]
    await _synced(first)  # the first instance's counts are in Redis
    await _synced(second)  # and the second has read them back
    refused = on_second.charge("known", 1)
    assert not refused.allowed and refused.retry_after == 55
    # A client it has not counted in this window yet, it cannot know of before its next sync:
    # that request is part of the overshoot; the next one is refused.
    answers = [on_second.charge("new", 1)]
    await _synced(second)
    answers.append(on_second.charge("new", 1))
    assert [a.allowed for a in answers] == [True, False]


# -- the store down -------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_counting_goes_on_while_redis_is_down_and_is_sent_once_it_is_back() -> None:
    port = _free_port()
    async with private_redis(port) as url:
        store = RedisKeyValue(redis_async.Redis.from_url(url), "t:", timeout_seconds=0.3)
        counters = Counters(store, SYNC)
        counters.start()
        limit = RateLimit(counters, 5, clock=_at_605)
        assert all(limit.charge("c", 1).allowed for _ in range(3))
        await _synced(counters)
    try:
        # Redis is gone: each decision is still made at once, on this process's count.
        decisions = [limit.charge("c", 1) for _ in range(4)]
        assert [d.allowed for d in decisions] == [True, True, False, False]
        assert decisions[-1].retry_after == 55
        assert not await counters.sync()
        assert counters.unsent == 4
        async with private_redis(port):  # back, and empty: it saved nothing
            await _synced(counters)
            assert counters.unsent == 0
            assert await store.get(f"rate:c:{WINDOW}") == b"4"  # what it counted meanwhile
    finally:
        await counters.close()
        await store.close()
