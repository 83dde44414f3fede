"""The per-upstream guard: one deadline, retries for reads only, a breaker, a concurrency cap."""

from __future__ import annotations

import asyncio

import pytest

from connectors.errors import UpstreamTimeout, UpstreamUnavailable, WriteConflict
from connectors.resilience import BreakerState, Guard, Policy


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Upstream:
    """A stand-in source system: fails the first `failures` calls, counts every call."""

    def __init__(self, failures: int = 0, error: Exception | None = None) -> None:
        self.calls = 0
        self.failures = failures
        self.error = error or UpstreamUnavailable("test", "refused")
        self.in_flight = 0
        self.most_in_flight = 0

    async def __call__(self) -> str:
        self.calls += 1
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0.01)
            if self.calls <= self.failures:
                raise self.error
            return "ok"
        finally:
            self.in_flight -= 1


async def test_a_read_is_retried_until_it_succeeds_within_its_budget() -> None:
    guard = Guard("test", Policy(timeout=2, retries=2, backoff=0.001))
    upstream = Upstream(failures=2)
    assert await guard.read(upstream) == "ok"
    assert (upstream.calls, guard.stats.retries) == (3, 2)


async def test_a_read_gives_up_after_its_retries() -> None:
    guard = Guard("test", Policy(timeout=2, retries=2, backoff=0.001))
    upstream = Upstream(failures=10)
    with pytest.raises(UpstreamUnavailable):
        await guard.read(upstream)
    assert upstream.calls == 3


async def test_a_write_is_never_retried() -> None:
    guard = Guard("test", Policy(timeout=2, retries=5, backoff=0.001))
    upstream = Upstream(failures=1)
    with pytest.raises(UpstreamUnavailable):
        await guard.write(upstream)
    assert upstream.calls == 1


async def test_the_deadline_covers_every_attempt_and_backoff() -> None:
    guard = Guard("test", Policy(timeout=0.2, retries=100, backoff=0.05))
    upstream = Upstream(failures=10_000)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(UpstreamTimeout):
        await guard.read(upstream)
    assert loop.time() - started < 1.0  # bounded by the deadline, not by 100 retries


async def test_a_hanging_call_becomes_a_timeout() -> None:
    guard = Guard("test", Policy(timeout=0.1))

    async def hang() -> str:
        await asyncio.sleep(3600)
        return "never"

    with pytest.raises(UpstreamTimeout):
        await guard.read(hang)
    assert guard.stats.timeouts == 1


async def test_the_breaker_opens_fails_fast_then_lets_one_trial_through() -> None:
    clock = Clock()
    guard = Guard(
        "test", Policy(timeout=1, retries=0, failure_threshold=3, open_seconds=10), clock=clock
    )
    failing = Upstream(failures=10_000)
    for _ in range(3):
        with pytest.raises(UpstreamUnavailable):
            await guard.read(failing)
    assert guard.breaker.state is BreakerState.OPEN
    with pytest.raises(UpstreamUnavailable, match="circuit breaker"):
        await guard.read(failing)
    assert failing.calls == 3  # failed fast: no call made

    clock.now += 10
    assert guard.breaker.state is BreakerState.HALF_OPEN
    with pytest.raises(UpstreamUnavailable):
        await guard.read(failing)  # the trial fails: open again
    assert failing.calls == 4 and guard.breaker.state is BreakerState.OPEN

    clock.now += 10
    healthy = Upstream()
    assert await guard.read(healthy) == "ok"
    assert guard.breaker.state is BreakerState.CLOSED


async def test_a_write_conflict_is_the_upstream_working_not_failing() -> None:
    guard = Guard("test", Policy(timeout=1, retries=0, failure_threshold=1))
    conflicting = Upstream(failures=5, error=WriteConflict("test", "already there"))
    with pytest.raises(WriteConflict):
        await guard.write(conflicting)
    assert guard.breaker.state is BreakerState.CLOSED


async def test_no_more_than_max_concurrency_calls_are_in_flight() -> None:
    guard = Guard("test", Policy(timeout=5, max_concurrency=3))
    upstream = Upstream()
    await asyncio.gather(*(guard.read(upstream) for _ in range(20)))
    assert upstream.calls == 20 and upstream.most_in_flight == 3
