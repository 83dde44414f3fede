"""The shared-state stream's reader, on each store: what one process publishes, another's
handlers get, in order; a reader starts from where the stream stood when it loaded."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from infra.kv import KeyValue, MemoryKeyValue
from infra.shared_state import SharedState


class Seen:
    def __init__(self) -> None:
        self.values: list[bytes] = []
        self.resets = 0

    def __call__(self, fields: Mapping[str, bytes]) -> None:
        self.values.append(fields["value"])

    async def reset(self) -> None:
        self.resets += 1


async def _until(seen: Seen, count: int) -> None:
    for _ in range(100):
        if len(seen.values) >= count:
            return
        await asyncio.sleep(0.02)


async def test_what_one_reader_publishes_the_others_handlers_get_in_order(kv: KeyValue) -> None:
    readers = [SharedState(kv, block_seconds=0.1) for _ in range(2)]
    seen = [Seen(), Seen()]
    for reader, heard in zip(readers, seen, strict=True):
        reader.on("greeting", heard)
        reader.on_reset(heard.reset)
        await reader.start()
    try:
        for value in (b"one", b"two", b"three"):
            await readers[0].publish("greeting", {"value": value})
        await readers[0].publish("other-kind", {"value": b"not a greeting"})
        await asyncio.gather(*(_until(heard, 3) for heard in seen))
    finally:
        for reader in readers:
            await reader.close()

    for heard in seen:  # the publisher's own reader too: the stream is everyone's
        assert heard.values == [b"one", b"two", b"three"]
        assert heard.resets == 1  # the load at start
    assert all(reader.fresh() for reader in readers)


async def test_a_reader_started_later_reads_only_what_came_after_its_load(kv: KeyValue) -> None:
    early = SharedState(kv, block_seconds=0.1)
    await early.start()
    late = SharedState(kv, block_seconds=0.1)
    seen = Seen()
    late.on("greeting", seen)
    try:
        await early.publish("greeting", {"value": b"before"})  # in the record it loads
        await late.start()
        await early.publish("greeting", {"value": b"after"})
        await _until(seen, 1)
    finally:
        await early.close()
        await late.close()

    assert seen.values == [b"after"]


async def test_an_in_process_replica_is_never_stale() -> None:
    """The embedded mode: its store cannot be out of reach, so nothing fails closed."""
    reader = SharedState(MemoryKeyValue(), max_staleness=0.001)
    assert reader.fresh()
