from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import redis.asyncio as redis_async

from infra.kv import NO_ID, Count, KeyValue, KeyValueUnavailable, RedisKeyValue, stream_id

Elapse = Callable[[float], Awaitable[None]]  # the `elapse` fixture: lets a TTL run out


async def test_values_expire_after_their_ttl(kv: KeyValue, elapse: Elapse) -> None:
    await kv.set("a", b"1", ttl_seconds=0.05)
    assert await kv.get("a") == b"1"
    await elapse(0.08)
    assert await kv.get("a") is None


async def test_incr_counts_within_a_window_and_then_restarts(
    kv: KeyValue, elapse: Elapse
) -> None:
    assert await kv.incr("bucket", ttl_seconds=0.05) == 1
    assert await kv.incr("bucket", 2, ttl_seconds=0.05) == 3
    await elapse(0.08)
    assert await kv.incr("bucket", ttl_seconds=0.05) == 1


async def test_get_many_keeps_order_and_reports_misses(kv: KeyValue) -> None:
    await kv.set_many({"x": b"1", "z": b"3"}, ttl_seconds=5)
    assert await kv.get_many(["x", "y", "z"]) == [b"1", None, b"3"]
    await kv.delete("x", "z")
    assert await kv.get_many(["x", "z"]) == [None, None]


async def test_read_and_count_reads_and_counts_in_one_call(
    kv: KeyValue, elapse: Elapse
) -> None:
    await kv.set("seen", b"yes")
    counts = [Count("rate", 1, 0.05), Count("cost", 7, 0.05)]
    assert await kv.read_and_count(["seen", "unseen"], counts) == ([b"yes", None], [1, 7])
    assert await kv.read_and_count([], counts) == ([], [2, 14])
    assert await kv.read_and_count(["seen"], []) == ([b"yes"], [])
    await elapse(0.08)  # the counters expire with the TTL their first count gave them
    assert await kv.read_and_count([], counts[:1]) == ([], [1])


async def test_incr_many_counts_and_reads_in_one_call(kv: KeyValue, elapse: Elapse) -> None:
    """What `infra.counters` sends each sync: its counts, and reads of the counters it holds."""
    await kv.set("seen", b"yes")
    counts = [Count("rate", 1, 0.05), Count("cost", 7, 0.05)]
    assert await kv.incr_many(counts, ["seen", "unseen"]) == ([1, 7], [b"yes", None])
    assert await kv.incr_many(counts) == ([2, 14], [])
    assert await kv.incr_many([], ["rate"]) == ([], [b"2"])
    await elapse(0.08)  # the counters expire with the TTL their first count gave them
    assert await kv.incr_many(counts[:1]) == ([1], [])


async def test_read_and_count_reads_thousands_of_keys(kv: KeyValue) -> None:
    """A document may name thousands of permits (two cache keys each); Lua's `unpack` alone
    stops at about 8,000 values."""
    keys = [f"many:{i}" for i in range(20_000)]
    await kv.set_many({k: k.encode() for k in keys[::7]}, 60)
    counts = [Count("many-counter", 1, 60)]

    values, spent = await kv.read_and_count(keys, counts)

    assert values == [k.encode() if i % 7 == 0 else None for i, k in enumerate(keys)]
    assert spent == [1]


async def _fifty_concurrent_calls(kv: KeyValue) -> None:
    """50 calls in one gather, each with reads and counters of its own and one counter shared."""
    await kv.set("common", b"all")
    own = {f"own:{i}:{j}": f"{i}.{j}".encode() for i in range(50) for j in range(i % 4)}
    await kv.set_many(own, 60)

    answers = await asyncio.gather(*(
        kv.read_and_count(
            ["common", *(f"own:{i}:{j}" for j in range(3))],
            [Count("shared", i + 1, 60), Count(f"own-counter:{i}", 100 + i, 60)],
        )
        for i in range(50)
    ))

    for i, (values, (_, own_total)) in enumerate(answers):
        assert values == [b"all", *(f"{i}.{j}".encode() if j < i % 4 else None for j in range(3))]
        assert own_total == 100 + i
    # The shared counter's totals are the running sums of the calls taken in some order.
    totals = sorted((spent[0], i + 1) for i, (_, spent) in enumerate(answers))
    assert [total - amount for total, amount in totals] == [0] + [t for t, _ in totals[:-1]]
    assert await kv.get("shared") == str(sum(range(1, 51))).encode()


async def test_concurrent_read_and_count_calls_each_get_their_own_answer(kv: KeyValue) -> None:
    await _fifty_concurrent_calls(kv)


async def test_concurrent_read_and_count_calls_share_one_script_call(kv: KeyValue) -> None:
    """Commandstats are the server's: another client's scripts meanwhile would count too."""
    if not isinstance(kv, RedisKeyValue):
        pytest.skip("counts the commands Redis receives")
    assert isinstance(kv, RedisKeyValue)

    async def evalsha_calls() -> int:
        stats = await kv.client.info("commandstats")
        return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))

    await kv.read_and_count(["warm"], [])  # the script is loaded: no NOSCRIPT retry below
    before = await evalsha_calls()
    await _fifty_concurrent_calls(kv)
    assert await evalsha_calls() - before <= 2


async def test_concurrent_calls_read_thousands_of_keys_between_them(kv: KeyValue) -> None:
    """Batched calls still go 1,000 keys per MGET, each from where the previous call's end."""
    big = [f"big:{i}" for i in range(20_000)]
    mid = [f"mid:{i}" for i in range(2_500)]
    stored = {k: k.encode() for k in [*big[::7], *mid[::3], "few:1"]}
    await kv.set_many(stored, 60)
    calls = [["few:0", "few:1"], mid, ["few:1"], big, mid[:1_200], ["few:2"]]

    answers = await asyncio.gather(*(
        kv.read_and_count(reads, [Count(f"counter:{n}", n + 1, 60)])
        for n, reads in enumerate(calls)
    ))

    assert answers == [([stored.get(k) for k in reads], [n + 1]) for n, reads in enumerate(calls)]


async def test_a_cancelled_waiter_leaves_the_others_answers_right(kv: KeyValue) -> None:
    """Cancelled before it is queued, before its batch is sent, in flight or after: the others
    get their own answers, and no reply is left on a connection for a later call to read."""
    await kv.set_many({"seen": b"yes", "victim": b"victim's"}, 60)
    for turns in range(12):
        victim = asyncio.create_task(kv.read_and_count(["victim"], [Count("shared", 1, 60)]))
        others = [
            asyncio.create_task(kv.read_and_count(
                ["seen", f"miss:{i}"], [Count(f"own:{turns}:{i}", i + 1, 60)]
            ))
            for i in range(10)
        ]
        for _ in range(turns):
            await asyncio.sleep(0)
        victim.cancel()

        assert await asyncio.gather(*others) == [([b"yes", None], [i + 1]) for i in range(10)]
        with contextlib.suppress(asyncio.CancelledError):
            await victim

    assert await kv.read_and_count(["seen", "victim"], []) == ([b"yes", b"victim's"], [])


@contextlib.asynccontextmanager
async def _silent_redis() -> AsyncIterator[tuple[int, list[asyncio.StreamWriter]]]:
    """A server that accepts connections and never answers: its port and its connections."""
    connections: list[asyncio.StreamWriter] = []

    async def silent(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)  # read nothing, answer nothing

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], connections
    finally:
        server.close()
        for writer in connections:
            writer.close()
        await server.wait_closed()


async def test_a_redis_that_accepts_and_never_answers_is_unavailable_in_time() -> None:
    """Each operation has a deadline of its own (the pool has no socket timeout)."""
    async with _silent_redis() as (port, connections):
        kv = RedisKeyValue(redis_async.Redis(host="127.0.0.1", port=port), timeout_seconds=0.3)
        started = time.monotonic()
        try:
            with pytest.raises(KeyValueUnavailable):
                await kv.read_and_count(["revoked:x"], [Count("rate", 1, 60)])
            assert time.monotonic() - started < 2.0
            assert connections  # it did connect: the wait was for the answer
        finally:
            await kv.close()


async def test_every_waiter_on_a_redis_that_never_answers_is_told_in_time() -> None:
    """70 concurrent calls, so two batches (sent at once, on two connections)."""
    async with _silent_redis() as (port, connections):
        kv = RedisKeyValue(redis_async.Redis(host="127.0.0.1", port=port), timeout_seconds=0.3)
        started = time.monotonic()

        async def refused_after(i: int) -> float:
            with pytest.raises(KeyValueUnavailable):
                await kv.read_and_count([f"revoked:{i}"], [Count("rate", 1, 60)])
            return time.monotonic() - started

        try:
            waited = await asyncio.gather(*(refused_after(i) for i in range(70)))
            assert min(waited) > 0.25 and max(waited) < 2.0
            assert len(connections) == 2
        finally:
            await kv.close()


# -- streams (the shared-state stream, infra.shared_state) -----------------------------------------


async def test_a_stream_gives_its_entries_in_order_after_an_id(kv: KeyValue) -> None:
    ids = [await kv.append("log", {"n": b"%d" % i}, max_len=100) for i in range(5)]

    everything = await kv.read_stream("log", NO_ID, 0.05, count=100)
    later = await kv.read_stream("log", ids[2], 0.05, count=100)
    some = await kv.read_stream("log", NO_ID, 0.05, count=2)

    assert [i for i, _ in everything] == ids
    assert sorted(ids, key=stream_id) == ids  # ids increase
    assert [f["n"] for _, f in everything] == [b"0", b"1", b"2", b"3", b"4"]
    assert [f["n"] for _, f in later] == [b"3", b"4"]
    assert [f["n"] for _, f in some] == [b"0", b"1"]
    assert await kv.read_stream("log", ids[-1], 0.05, count=100) == []  # nothing new: waited


async def test_a_blocked_read_returns_with_an_entry_appended_meanwhile(kv: KeyValue) -> None:
    last = await kv.append("log", {"n": b"0"}, max_len=100)
    reading = asyncio.create_task(kv.read_stream("log", last, 5.0, count=100))
    await asyncio.sleep(0.05)
    added = await kv.append("log", {"n": b"1"}, max_len=100)

    assert await reading == [(added, {"n": b"1"})]


async def test_a_stream_state_says_where_it_stands_and_what_was_trimmed(kv: KeyValue) -> None:
    missing = await kv.stream_state("log")
    ids = [await kv.append("log", {"n": b"%d" % i}, max_len=10) for i in range(250)]
    state = await kv.stream_state("log")
    held = await kv.read_stream("log", NO_ID, 0.05, count=1000)

    assert (missing.last_id, missing.trimmed_to) == (NO_ID, NO_ID)
    assert state.epoch == missing.epoch  # the same store, not restarted
    assert state.last_id == ids[-1]
    assert 10 <= len(held) < 250  # about max_len kept, never fewer
    assert [i for i, _ in held] == ids[-len(held):]
    # Every entry after `trimmed_to` is still held: a reader whose last id is below it missed
    # entries, one at or above it can resume.
    gone, kept = stream_id(ids[-len(held) - 1]), stream_id(held[0][0])
    assert gone <= stream_id(state.trimmed_to) < kept
