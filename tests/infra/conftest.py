"""The store contract runs against every implementation in every run: the in-process store
always, and Redis too when `HUB_TEST_REDIS_URL` names one (reported as skipped otherwise)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from infra.kv import KeyValue, MemoryKeyValue
from tests.services import REDIS_URL, fresh_redis_key_value


class ManualClock:
    """Monotonic seconds that move only when a test says so."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(
    params=[
        "memory",
        pytest.param(
            "redis", marks=pytest.mark.skipif(REDIS_URL is None, reason="HUB_TEST_REDIS_URL unset")
        ),
    ]
)
async def kv(request: pytest.FixtureRequest, clock: ManualClock) -> AsyncIterator[KeyValue]:
    """An empty store of each implementation in turn."""
    if request.param == "memory":
        store = MemoryKeyValue(clock=clock)
        yield store
        await store.close()
        return
    assert REDIS_URL is not None
    async with fresh_redis_key_value(REDIS_URL) as redis_store:
        yield redis_store


@pytest.fixture
def elapse(kv: KeyValue, clock: ManualClock) -> Callable[[float], Awaitable[None]]:
    """Let `seconds` pass for the store: the in-process one's clock moves; Redis expires keys
    on its own clock, so for it they are waited out."""

    async def elapse(seconds: float) -> None:
        if isinstance(kv, MemoryKeyValue):
            clock.now += seconds
        else:
            await asyncio.sleep(seconds)

    return elapse
