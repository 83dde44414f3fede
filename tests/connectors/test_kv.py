from __future__ import annotations

import asyncio

from connectors.kv import Count, KeyValue


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
