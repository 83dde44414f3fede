"""The per-upstream guard: one deadline, retries for reads only, a breaker, a concurrency cap."""

from __future__ import annotations

import asyncio
import contextlib

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
        "test", Policy(timeout=1, retries=0, min_calls=3, open_seconds=10), clock=clock
    )
    failing = Upstream(failures=10_000)
    for _ in range(3):  # three calls in the window (min_calls), all failed: ratio 1
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
    guard = Guard("test", Policy(timeout=1, retries=0, min_calls=1))
    conflicting = Upstream(failures=5, error=WriteConflict("test", "already there"))
    with pytest.raises(WriteConflict):
        await guard.write(conflicting)
    assert guard.breaker.state is BreakerState.CLOSED


async def test_no_more_than_max_concurrency_calls_are_in_flight() -> None:
    guard = Guard("test", Policy(timeout=5, max_concurrency=3))
    upstream = Upstream()
    await asyncio.gather(*(guard.read(upstream) for _ in range(20)))
    assert upstream.calls == 20 and upstream.most_in_flight == 3




class _Call:
    """One call to the simulated system: it hangs until the test ends it."""

    def __init__(self) -> None:
        self.made = False
        self.answer: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.decided = asyncio.Event()  # made, or refused by the guard

    async def __call__(self) -> str:
        self.made = True
        self.decided.set()
        return await self.answer


class Blip:
    """Calls at `rate` per second to a source system that fails every call overlapping a blip.

    A discrete-event run on the breaker's injected clock: call i starts at i/rate and ends
    `latency` later, when the test answers it (failed if [start, end] overlaps the blip, else
    ok); nothing sleeps. Records, by start time, the calls the guard refused without calling
    (breaker open) and those the system failed.
    """

    def __init__(self, guard: Guard, clock: Clock, blip: tuple[float, float]) -> None:
        self.guard, self.clock, self.blip = guard, clock, blip
        self.refused: list[float] = []
        self.failed: list[float] = []

    async def run(self, rate: float, seconds: float, latency: float) -> None:
        zero = self.clock.now
        pending: list[tuple[float, _Call, asyncio.Task[None]]] = []
        for i in range(round(seconds * rate)):
            began = i / rate
            while pending and pending[0][0] + latency <= began:
                await self._end(zero, latency, *pending.pop(0))
            self.clock.now = zero + began
            call = _Call()
            task = asyncio.create_task(self._one(call, began))
            await call.decided.wait()
            if call.made:
                pending.append((began, call, task))
            else:
                await task
        for item in pending:
            await self._end(zero, latency, *item)

    async def _one(self, call: _Call, began: float) -> None:
        try:
            await self.guard.write(call)
        except UpstreamUnavailable as exc:
            (self.refused if not call.made else self.failed).append(began)
            assert call.made or "circuit breaker" in str(exc)
        finally:
            call.decided.set()

    async def _end(self, zero: float, latency: float, began: float, call: _Call,
                   task: asyncio.Task[None]) -> None:
        self.clock.now = zero + began + latency
        if began < self.blip[1] and began + latency > self.blip[0]:
            call.answer.set_exception(UpstreamUnavailable("test", "connection lost"))
        else:
            call.answer.set_result("ok")
        await task


RATE, LATENCY = 80.0, 0.02  # enrollment writes per second; one write's duration


@pytest.mark.parametrize("blip_at", [2.0, 0.0], ids=["after-steady-traffic", "at-start"])
async def test_a_short_blip_at_80_writes_a_second_costs_no_more_than_the_blip(
    blip_at: float,
) -> None:
    clock = Clock()
    guard = Guard("agency-420100", Policy(), clock=clock)  # the production defaults
    blip = Blip(guard, clock, (blip_at, blip_at + 0.14))
    await blip.run(RATE, seconds=blip_at + 15, latency=LATENCY)

    assert blip.failed  # the blip really failed the writes that met it
    assert all(blip_at - LATENCY < t < blip_at + 0.14 for t in blip.failed)
    # A write that started during the blip fails up to one write's duration after it ends;
    # that is still the blip. Past it, the breaker must not refuse a single write.
    late = [t for t in blip.refused if t >= blip_at + 0.14 + LATENCY]
    assert late == [], f"{len(late)} writes refused after the blip, until {late[-1]:.2f} s"


async def test_calls_in_flight_when_the_breaker_opens_do_not_keep_it_open() -> None:
    clock = Clock()
    guard = Guard("test", Policy(timeout=5, min_calls=3, open_seconds=10), clock=clock)
    slow = [_Call() for _ in range(5)]
    tasks = [asyncio.create_task(guard.write(call)) for call in slow]
    await asyncio.sleep(0)
    assert all(call.made for call in slow)
    for _ in range(3):
        with pytest.raises(UpstreamUnavailable):
            await guard.write(Upstream(failures=1))
    assert guard.breaker.state is BreakerState.OPEN  # opened at 100.0

    clock.now += 1  # the five started before it opened; they fail now
    for call in slow:
        call.answer.set_exception(UpstreamUnavailable("test", "connection lost"))
    await asyncio.gather(*tasks, return_exceptions=True)
    assert guard.breaker.state is BreakerState.OPEN

    clock.now = 110.0  # ten seconds after it opened, not after the last stale failure
    assert guard.breaker.state is BreakerState.HALF_OPEN
    assert await guard.write(Upstream()) == "ok"
    assert guard.breaker.state is BreakerState.CLOSED


async def _outcomes(guard: Guard, clock: Clock, pattern: str, step: float = 0.1) -> None:
    """One call per `step` seconds: "x" fails, "." succeeds."""
    for mark in pattern:
        async def call(failed: bool = mark == "x") -> str:
            if failed:
                raise UpstreamUnavailable("test", "refused")
            return "ok"

        with contextlib.suppress(UpstreamUnavailable):
            await guard.write(call)
        clock.now += step


async def test_a_run_of_failures_amid_steady_traffic_does_not_open_the_breaker() -> None:
    clock = Clock()
    guard = Guard("test", Policy(min_calls=20, failure_ratio=0.5, window_seconds=10), clock=clock)
    await _outcomes(guard, clock, "." * 50 + "x" * 12 + "." * 50)  # 12 in a row: 19 % of 62
    assert guard.breaker.state is BreakerState.CLOSED and guard.stats.rejected == 0


async def test_the_breaker_opens_once_the_failure_ratio_over_the_window_is_reached() -> None:
    clock = Clock()
    guard = Guard("test", Policy(min_calls=20, failure_ratio=0.5, window_seconds=10), clock=clock)
    await _outcomes(guard, clock, "." * 20 + "x" * 19)  # 19 of 39: under half
    assert guard.breaker.state is BreakerState.CLOSED
    await _outcomes(guard, clock, "x")  # 20 of 40
    assert guard.breaker.state is BreakerState.OPEN


async def test_too_few_calls_in_the_window_do_not_open_the_breaker() -> None:
    clock = Clock()
    guard = Guard("test", Policy(min_calls=20, failure_ratio=0.5, window_seconds=10), clock=clock)
    await _outcomes(guard, clock, "x" * 19)  # all failed, but 19 calls say little
    assert guard.breaker.state is BreakerState.CLOSED
    clock.now += 10
    # One failed call a second: never 20 calls within the 10 s window, however long it lasts.
    await _outcomes(guard, clock, "x" * 60, step=1.0)
    assert guard.breaker.state is BreakerState.CLOSED and guard.stats.rejected == 0


async def test_half_open_lets_a_few_trials_through_and_one_success_closes() -> None:
    clock = Clock()
    guard = Guard(
        "test", Policy(min_calls=3, open_seconds=10, half_open_calls=2), clock=clock
    )
    await _outcomes(guard, clock, "xxx", step=0)
    assert guard.breaker.state is BreakerState.OPEN
    clock.now += 10
    trials = [_Call() for _ in range(3)]
    tasks = [asyncio.create_task(guard.write(call)) for call in trials]
    await asyncio.sleep(0)
    assert [call.made for call in trials] == [True, True, False]  # two trials, one refused
    with pytest.raises(UpstreamUnavailable, match="circuit breaker"):
        await tasks[2]
    trials[0].answer.set_result("ok")
    assert await tasks[0] == "ok"
    assert guard.breaker.state is BreakerState.CLOSED
    trials[1].answer.set_exception(UpstreamUnavailable("test", "late"))  # a stale trial
    with pytest.raises(UpstreamUnavailable):
        await tasks[1]
    assert guard.breaker.state is BreakerState.CLOSED


async def test_an_outage_at_80_writes_a_second_still_opens_the_breaker_for_its_period() -> None:
    clock = Clock()
    policy = Policy()
    guard = Guard("agency-420100", policy, clock=clock)
    blip = Blip(guard, clock, (2.0, 5.0))  # three seconds down
    await blip.run(RATE, seconds=20, latency=LATENCY)

    assert blip.refused  # failed fast instead of calling a dead database
    opened = blip.refused[0]
    assert opened < 5.0
    # Refused from the opening for `open_seconds`, then while the first trial is under way
    # (one write's duration); it finds the database back and closes the breaker.
    assert blip.refused[-1] <= opened + policy.open_seconds + LATENCY + 1 / RATE


def test_an_operator_s_former_breaker_setting_still_takes_effect(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from hub.settings import Settings

    assert Settings().upstream_policy("wms").min_calls == 20
    monkeypatch.setenv("HUB_BREAKER_FAILURE_THRESHOLD", "3")  # its meaning before the window
    monkeypatch.setenv("HUB_BREAKER_FAILURE_RATIO", "0.25")
    policy = Settings().upstream_policy("agency-420100")
    assert (policy.min_calls, policy.failure_ratio) == (3, 0.25)
