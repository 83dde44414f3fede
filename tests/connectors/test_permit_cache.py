"""The shared permit cache: read-through, dropped at once by `invalidate`, never stale after it;
and each instance's local copies, dropped by the other instances' invalidations.

Against the real WMS simulator over HTTP and the real store (Redis with HUB_TEST_REDIS_URL).
"""

from __future__ import annotations

import asyncio

import httpx
import pytest
import redis.asyncio as redis_async
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.cache import CachedPermitSource
from connectors.wms import HttpPermitSource
from infra.kv import KeyValue, RedisKeyValue
from infra.shared_state import SharedState
from tests.conftest import Simulators

BATCH = "POST /permits:batch"


async def _batches(simulators: Simulators) -> int:
    count: int = (await simulators.stats(simulators.wms_url))["requests"].get(BATCH, 0)
    return count


def _numbers(simulators: Simulators, count: int, offset: int) -> list[str]:
    return sorted(simulators.dataset.permits)[-offset - count : -offset]


async def test_a_second_read_is_served_from_the_cache_until_invalidated(
    simulators: Simulators, kv: KeyValue
) -> None:
    await simulators.reset()
    numbers = _numbers(simulators, 5, 10)
    async with httpx.AsyncClient() as client:
        cache = CachedPermitSource(HttpPermitSource(client, simulators.wms_url), kv, 60)
        first = await cache.permits(numbers)
        again = await cache.permits(numbers)
        assert again == first and set(first) == set(numbers)
        assert await _batches(simulators) == 1

        await cache.invalidate(numbers[:2])
        third = await cache.permits(numbers)

    assert third == first
    assert await _batches(simulators) == 2
    assert (cache.stats.hits, cache.stats.misses) == (8, 7)


async def test_a_read_that_overlaps_an_invalidation_never_leaves_a_stale_entry(
    simulators: Simulators, kv: KeyValue
) -> None:
    """Read starts (old state), the change and its invalidation land, the read then writes."""
    await simulators.reset()
    number = _numbers(simulators, 1, 20)[0]
    async with httpx.AsyncClient() as client:
        cache = CachedPermitSource(HttpPermitSource(client, simulators.wms_url), kv, 60)
        await client.post(simulators.wms_url + "/_sim/faults", json={"latency_ms": 400})
        try:
            slow_read = asyncio.create_task(cache.permits([number]))
            await asyncio.sleep(0.1)  # the read has looked at the cache and gone upstream
            await cache.invalidate([number])
            await slow_read  # writes what it read under the generation it started with
        finally:
            await client.delete(simulators.wms_url + "/_sim/faults")
        before = await _batches(simulators)
        await cache.permits([number])
    assert await _batches(simulators) == before + 1  # the overlapping entry was not a hit


async def test_an_unreachable_store_falls_through_to_the_wms(simulators: Simulators) -> None:
    dead = RedisKeyValue(redis_async.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2))
    number = _numbers(simulators, 1, 30)[0]
    async with httpx.AsyncClient() as client:
        cache = CachedPermitSource(HttpPermitSource(client, simulators.wms_url), dead, 60)
        found = await cache.permits([number])
    await dead.close()
    assert found[number].number == number
    assert cache.stats.errors == 1  # the failed read; no write is tried after it


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    steps=st.lists(
        st.tuples(st.sampled_from(["read", "invalidate", "cancel"]), st.integers(0, 3)),
        min_size=1,
        max_size=12,
    )
)
async def test_the_cache_always_agrees_with_the_wms_after_each_invalidated_change(
    simulators: Simulators, kv: KeyValue, steps: list[tuple[str, int]]
) -> None:
    """Any interleaving of reads, invalidations and (invalidated) changes: reads are current.

    A change is made at the WMS simulator, followed by the invalidation the hub performs when
    its event arrives; every read after that must see it.
    """
    numbers = _numbers(simulators, 4, 40)  # cancelled for good here: nobody else reads them
    dataset = simulators.dataset
    async with httpx.AsyncClient() as client:
        cache = CachedPermitSource(HttpPermitSource(client, simulators.wms_url), kv, 60)
        for action, index in steps:
            number = numbers[index]
            if action == "cancel":
                response = await client.post(
                    f"{simulators.wms_url}/admin/permits/{number}/changes",
                    json={"kind": "CANCELLED"},
                )
                assert response.status_code == 200
                await cache.invalidate([number])
            elif action == "invalidate":
                await cache.invalidate([number])
            found = await cache.permits(numbers)
            assert {n: p.status for n, p in found.items()} == {
                n: dataset.permits[n].status for n in numbers
            }


async def test_entries_read_ahead_are_served_as_a_read_would_serve_them(
    simulators: Simulators, kv: KeyValue
) -> None:
    """The request path reads a request's cache entries with its shared checks (`keys_of`)
    and hands them over (`primed`): hits are served, misses read through and are stored, and
    a load of permits not all read ahead is an ordinary read."""
    await simulators.reset()
    numbers = _numbers(simulators, 4, 40)
    async with httpx.AsyncClient() as client:
        cache = CachedPermitSource(HttpPermitSource(client, simulators.wms_url), kv, 60)
        await cache.permits(numbers[:2])  # two warm, two cold
        assert await _batches(simulators) == 1

        view = cache.primed(numbers[:3], await kv.get_many(cache.keys_of(numbers[:3])))
        primed = await view.permits(numbers[:3])
        assert await _batches(simulators) == 2  # the one cold permit read ahead
        mixed = await view.permits(numbers)
        assert await _batches(simulators) == 3  # the one never read: its own read through
        again = await cache.permits(numbers)

    assert set(primed) == set(numbers[:3])
    assert mixed == again and set(again) == set(numbers)
    assert await _batches(simulators) == 3  # every permit was stored
    assert (cache.stats.hits, cache.stats.misses) == (2 + 3 + 4, 2 + 1 + 1)


async def test_values_that_do_not_match_the_keys_are_refused(kv: KeyValue) -> None:
    async with httpx.AsyncClient() as client:
        cache = CachedPermitSource(HttpPermitSource(client, "http://127.0.0.1:1"), kv, 60)
        with pytest.raises(ValueError, match="values for the 4 keys"):
            cache.primed(["WP1", "WP2"], [None])


async def test_an_entry_decoded_before_is_still_dead_once_its_generation_moved(
    simulators: Simulators, kv: KeyValue
) -> None:
    """Decoded entries are kept per process, by their bytes; the generation read with them
    still decides. Here the very bytes of an entry come back after an invalidation, as an
    overlapping read would write them: they must not be served."""
    await simulators.reset()
    number = _numbers(simulators, 1, 50)[0]
    async with httpx.AsyncClient() as client:
        cache = CachedPermitSource(HttpPermitSource(client, simulators.wms_url), kv, 60)
        await cache.permits([number])
        await cache.permits([number])  # a hit: decoded and kept
        entry_key = cache.keys_of([number])[0]
        entry = await kv.get(entry_key)
        assert entry is not None

        await cache.invalidate([number])
        await kv.set(entry_key, entry, 60)
        before = await _batches(simulators)
        await cache.permits([number])

    assert await _batches(simulators) == before + 1
    assert (cache.stats.hits, cache.stats.misses) == (1, 2)


async def test_all_hits_only_when_every_permit_read_ahead_is_a_hit(
    simulators: Simulators, kv: KeyValue
) -> None:
    await simulators.reset()
    numbers = _numbers(simulators, 3, 60)
    async with httpx.AsyncClient() as client:
        cache = CachedPermitSource(HttpPermitSource(client, simulators.wms_url), kv, 60)
        await cache.permits(numbers[:2])

        mixed = cache.primed(numbers, await kv.get_many(cache.keys_of(numbers)))
        assert mixed.all_hits() == {}  # one is cold: nothing taken, all served as usual
        assert set(await mixed.permits(numbers)) == set(numbers)

        warm = cache.primed(numbers, await kv.get_many(cache.keys_of(numbers)))
        hits = warm.all_hits()

    assert hits == await cache.permits(numbers) and set(hits) == set(numbers)
    assert await _batches(simulators) == 2  # the first read, and the cold one
    assert (cache.stats.hits, cache.stats.misses) == (2 + 3 + 3, 2 + 1)


# -- local copies, dropped through the shared-state stream -----------------------------------------


async def _until_read_from_the_store(cache: CachedPermitSource, number: str) -> None:
    """Waits (up to a second) until `cache` no longer serves `number` from a local copy."""
    for _ in range(50):
        if cache.keys_of([number]):
            return
        await asyncio.sleep(0.02)


async def test_a_permit_copied_locally_is_served_without_asking_the_store(
    simulators: Simulators, kv: KeyValue
) -> None:
    await simulators.reset()
    numbers = _numbers(simulators, 2, 70)
    shared = SharedState(kv, block_seconds=0.1)
    await shared.start()
    try:
        async with httpx.AsyncClient() as client:
            cache = CachedPermitSource(
                HttpPermitSource(client, simulators.wms_url), kv, 60, shared=shared
            )
            assert cache.keys_of(numbers) != []  # nothing copied yet: the store is read
            first = await cache.permits(numbers)
            keys = cache.keys_of(numbers)
            view = cache.primed(numbers, [])
            served = view.all_hits()
    finally:
        await shared.close()

    assert keys == []  # every permit has a local copy: nothing to read from the store
    assert served == first
    assert await _batches(simulators) == 1


async def test_an_invalidation_on_one_instance_drops_the_others_copy(
    simulators: Simulators, kv: KeyValue
) -> None:
    """Two instances on one store, each with its local copy; the permit is cancelled and the
    first invalidates it: the second drops its copy and reads the cancellation."""
    number = _numbers(simulators, 1, 80)[0]
    readers = [SharedState(kv, block_seconds=0.1) for _ in range(2)]
    for reader in readers:
        await reader.start()
    try:
        async with httpx.AsyncClient() as client:
            first, second = (
                CachedPermitSource(HttpPermitSource(client, simulators.wms_url), kv, 60,
                                   shared=reader)
                for reader in readers
            )
            for cache in (first, second):
                await cache.permits([number])
                assert cache.keys_of([number]) == []  # copied
            changed = await client.post(
                f"{simulators.wms_url}/admin/permits/{number}/changes", json={"kind": "CANCELLED"}
            )
            assert changed.status_code == 200
            await first.invalidate([number])
            await _until_read_from_the_store(second, number)
            after = await second.permits([number])
    finally:
        for reader in readers:
            await reader.close()

    assert after[number].status.value == "CANCELLED"


async def test_no_copy_is_served_by_an_instance_that_has_not_heard_the_stream_lately(
    simulators: Simulators, kv: KeyValue
) -> None:
    """Its copies may have missed an invalidation: the shared entries decide instead."""
    if not kv.shared:
        pytest.skip("the in-process store is never out of reach")
    number = _numbers(simulators, 1, 90)[0]
    now = [1000.0]
    shared = SharedState(kv, block_seconds=0.1, clock=lambda: now[0])
    await shared.start()
    try:
        async with httpx.AsyncClient() as client:
            cache = CachedPermitSource(
                HttpPermitSource(client, simulators.wms_url), kv, 60, shared=shared
            )
            await cache.permits([number])
            heard = cache.keys_of([number])
            now[0] += 60  # as if the last read of the stream were a minute ago
            unheard = cache.keys_of([number])
    finally:
        await shared.close()

    assert heard == []
    assert unheard != []
