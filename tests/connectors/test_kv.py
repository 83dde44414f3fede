from __future__ import annotations

import asyncio
import time

import pytest
import redis.asyncio as redis_async

from connectors.kv import Count, KeyValue, KeyValueUnavailable, RedisKeyValue


async def test_values_expire_after_their_ttl(kv: KeyValue) -> None:
    await kv.set("a", b"1", ttl_seconds=0.05)
    assert await kv.get("a") == b"1"
    await asyncio.sleep(0.08)
    assert await kv.get("a") is None


async def test_incr_counts_within_a_window_and_then_restarts(kv: KeyValue) -> None:
    assert await kv.incr("bucket", ttl_seconds=0.05) == 1
    assert await kv.incr("bucket", 2, ttl_seconds=0.05) == 3
    await asyncio.sleep(0.08)
    assert await kv.incr("bucket", ttl_seconds=0.05) == 1


async def test_get_many_keeps_order_and_reports_misses(kv: KeyValue) -> None:
    await kv.set_many({"x": b"1", "z": b"3"}, ttl_seconds=5)
    assert await kv.get_many(["x", "y", "z"]) == [b"1", None, b"3"]
    await kv.delete("x", "z")
    assert await kv.get_many(["x", "z"]) == [None, None]


async def test_read_and_count_reads_and_counts_in_one_call(kv: KeyValue) -> None:
    await kv.set("seen", b"yes")
    counts = [Count("rate", 1, 0.05), Count("cost", 7, 0.05)]
    assert await kv.read_and_count(["seen", "unseen"], counts) == ([b"yes", None], [1, 7])
    assert await kv.read_and_count([], counts) == ([], [2, 14])
    assert await kv.read_and_count(["seen"], []) == ([b"yes"], [])
    await asyncio.sleep(0.08)  # the counters expire with the TTL their first count gave them
    assert await kv.read_and_count([], counts[:1]) == ([], [1])


async def test_read_and_count_reads_thousands_of_keys(kv: KeyValue) -> None:
    """A document may name thousands of permits (two cache keys each); Lua's `unpack` alone
    stops at about 8,000 values."""
    keys = [f"many:{i}" for i in range(20_000)]
    await kv.set_many({k: k.encode() for k in keys[::7]}, 60)
    counts = [Count("many-counter", 1, 60)]

    values, spent = await kv.read_and_count(keys, counts)

    assert values == [k.encode() if i % 7 == 0 else None for i, k in enumerate(keys)]
    assert spent == [1]


async def test_a_redis_that_accepts_and_never_answers_is_unavailable_in_time() -> None:
    """Each operation has a deadline of its own (the pool has no socket timeout)."""
    connections: list[asyncio.StreamWriter] = []

    async def silent(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)  # read nothing, answer nothing

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    kv = RedisKeyValue(redis_async.Redis(host="127.0.0.1", port=port), timeout_seconds=0.3)
    started = time.monotonic()
    try:
        with pytest.raises(KeyValueUnavailable):
            await kv.read_and_count(["revoked:x"], [Count("rate", 1, 60)])
        assert time.monotonic() - started < 2.0
        assert connections  # it did connect: the wait was for the answer
    finally:
        await kv.close()
        server.close()
        for writer in connections:
            writer.close()
        await server.wait_closed()
