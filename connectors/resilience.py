"""One `Guard` per upstream: a deadline, bounded retries for safe reads, a circuit breaker, a cap.

    call --> breaker open? --yes--> UpstreamUnavailable at once (no call made)
               | no
             wait for one of `max_concurrency` slots      \
             attempt --UpstreamUnavailable--> retry?        } all inside ONE deadline: `timeout`
               (reads only, `retries` more, full jitter)   /
             deadline passed --> UpstreamTimeout

The deadline covers the slot wait, every attempt and every backoff, so a caller hears back
within `timeout` whatever the upstream does (hang, trickle, resets). Writes are never retried:
an attempt whose outcome is unknown may have been applied. A `WriteConflict` is the upstream
working as it should, so it counts as a success for the breaker.

The breaker opens on a failure rate, not on a run of failures: when, over the last
`window_seconds`, at least `min_calls` calls ended and at least `failure_ratio` of them failed
(timeouts included). It then fails fast for `open_seconds`, counted from the moment it opened,
and lets `half_open_calls` trial calls through (half-open): a success closes it, a failure
opens it again. Outcomes of calls admitted before the last transition are ignored, so the
calls in flight when it opens cannot keep it open. So a blip that fails fewer than
`failure_ratio` of the window's calls costs the calls that meet it and nothing more, while an
outage still opens the breaker. While one upstream is down, calls to the others are untouched:
each has its own slots and breaker, which keeps the queries that do not need it as fast as before.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

from opentelemetry.trace import NoOpTracer, Status, StatusCode, Tracer

from connectors.errors import RegionNotServed, UpstreamTimeout, UpstreamUnavailable, WriteConflict

__all__ = ["BreakerState", "CircuitBreaker", "Guard", "GuardStats", "Policy", "Ticket"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Policy:
    timeout: float = 2.0
    retries: int = 2  # extra attempts for a safe read
    backoff: float = 0.05  # base of the full-jitter backoff, seconds
    max_concurrency: int = 50
    # The breaker opens when, over the last `window_seconds`, at least `min_calls` calls ended
    # and at least `failure_ratio` of them failed.
    min_calls: int = 20
    failure_ratio: float = 0.5
    window_seconds: float = 10.0
    open_seconds: float = 10.0
    half_open_calls: int = 1  # trial calls let through at once after the open period


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class Ticket:
    """Handed to an admitted call; its outcome counts only in the breaker state it began in."""

    generation: int
    trial: bool


class _Window:
    """Calls and failures over the last `seconds` (to a tenth of it: constant memory and time).

    Outcomes go into `BUCKETS` slices of `seconds / BUCKETS` each; a slice leaves the window
    whole once it is `BUCKETS` slices old.
    """

    BUCKETS = 10

    def __init__(self, seconds: float) -> None:
        self._width = seconds / self.BUCKETS
        self._slices: dict[int, list[int]] = {}  # slice number -> [calls, failures]

    def add(self, now: float, failed: bool) -> None:
        current = int(now // self._width)
        if current not in self._slices:  # a new slice: the oldest may have left the window
            for old in [n for n in self._slices if n <= current - self.BUCKETS]:
                del self._slices[old]
        counts = self._slices.setdefault(current, [0, 0])
        counts[0] += 1
        counts[1] += failed

    def totals(self) -> tuple[int, int]:
        """(calls, failures) in the window as of the last outcome added."""
        return sum(c[0] for c in self._slices.values()), sum(c[1] for c in self._slices.values())

    def clear(self) -> None:
        self._slices.clear()


class CircuitBreaker:
    """Closed -> open on a failure rate; open -> half-open after `open_seconds`; trials decide.

    Every transition starts a new generation. An outcome counts only if the call was admitted
    in the current one: a call that began before the breaker opened and fails after it must
    not move the open period (at 80 calls/s, hundreds of them would), and one that began
    before it closed again says nothing of the upstream now.
    """

    def __init__(self, policy: Policy, clock: Callable[[], float] = time.monotonic) -> None:
        self._policy = policy
        self._clock = clock
        self._window = _Window(policy.window_seconds)
        self._generation = 0
        self._opened_at: float | None = None
        self._trials = 0  # trial calls under way in the current half-open period

    @property
    def state(self) -> BreakerState:
        if self._opened_at is None:
            return BreakerState.CLOSED
        if self._clock() - self._opened_at >= self._policy.open_seconds:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    def allow(self) -> Ticket | None:
        """A ticket for a call that may go ahead; None: fail fast."""
        state = self.state
        if state is BreakerState.CLOSED:
            return Ticket(self._generation, trial=False)
        if state is BreakerState.HALF_OPEN and self._trials < self._policy.half_open_calls:
            self._trials += 1  # the rest still fail fast until a trial tells
            return Ticket(self._generation, trial=True)
        return None

    def success(self, ticket: Ticket) -> None:
        if ticket.generation != self._generation:
            return
        if ticket.trial:
            self._transition(opened_at=None)  # the upstream answers again: closed
        else:
            self._window.add(self._clock(), failed=False)

    def failure(self, ticket: Ticket) -> None:
        if ticket.generation != self._generation:
            return
        now = self._clock()
        if ticket.trial:
            self._transition(opened_at=now)
            return
        self._window.add(now, failed=True)
        calls, failures = self._window.totals()
        if calls >= self._policy.min_calls and failures >= self._policy.failure_ratio * calls:
            self._transition(opened_at=now)

    def release(self, ticket: Ticket) -> None:
        """The call ended without telling anything: a trial's place goes to the next call."""
        if ticket.trial and ticket.generation == self._generation:
            self._trials -= 1

    def _transition(self, opened_at: float | None) -> None:
        self._generation += 1
        self._opened_at = opened_at
        self._trials = 0
        self._window.clear()


@dataclass(slots=True)
class GuardStats:
    calls: int = 0
    failures: int = 0
    retries: int = 0
    timeouts: int = 0
    rejected: int = 0  # failed fast: breaker open
    in_flight: int = 0


class Guard:
    def __init__(
        self,
        upstream: str,
        policy: Policy,
        clock: Callable[[], float] = time.monotonic,
        tracer: Tracer | None = None,
    ) -> None:
        self.upstream = upstream
        self.policy = policy
        self.tracer = tracer or NoOpTracer()
        self.breaker = CircuitBreaker(policy, clock)
        self._slots = asyncio.Semaphore(policy.max_concurrency)
        self.stats = GuardStats()
        self.observers: list[Callable[[str, str, float], None]] = []  # (upstream, result, s)

    @property
    def breaker_open(self) -> bool:
        return self.breaker.state is BreakerState.OPEN

    @property
    def in_flight(self) -> int:
        return self.stats.in_flight

    async def read(self, call: Callable[[], Awaitable[T]]) -> T:
        """A safe read: retried with jitter on UpstreamUnavailable while the deadline allows."""
        return await self._run(call, self.policy.retries, self.policy.timeout)

    async def write(self, call: Callable[[], Awaitable[T]], deadline: float | None = None) -> T:
        """A write: one attempt only; `deadline` (seconds) if it may queue longer than a read."""
        return await self._run(call, 0, deadline or self.policy.timeout)

    async def _run(self, call: Callable[[], Awaitable[T]], retries: int, deadline: float) -> T:
        with self.tracer.start_as_current_span(f"upstream {self.upstream}") as span:
            span.set_attribute("hub.upstream", self.upstream)
            before = self.stats.retries
            try:
                return await self._guarded(call, retries, deadline)
            except BaseException as exc:
                span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                raise
            finally:
                span.set_attribute("hub.retries", self.stats.retries - before)
                span.set_attribute("hub.breaker", self.breaker.state.value)

    async def _guarded(
        self, call: Callable[[], Awaitable[T]], retries: int, deadline: float
    ) -> T:
        ticket = self.breaker.allow()
        if ticket is None:
            self.stats.rejected += 1
            self._observe("rejected", 0.0)
            raise UpstreamUnavailable(self.upstream, "failing fast: the circuit breaker is open")
        loop = asyncio.get_running_loop()
        started = loop.time()
        self.stats.calls += 1
        try:
            async with asyncio.timeout_at(started + deadline):
                async with self._slots:
                    self.stats.in_flight += 1
                    try:
                        result = await self._attempts(call, retries)
                    finally:
                        self.stats.in_flight -= 1
        except TimeoutError:
            self.stats.timeouts += 1
            self._failed(ticket, "timeout", loop.time() - started)
            raise UpstreamTimeout(self.upstream, f"no answer within {deadline:g} s") from None
        except UpstreamTimeout:
            self.stats.timeouts += 1
            self._failed(ticket, "timeout", loop.time() - started)
            raise
        except RegionNotServed:
            self.breaker.success(ticket)  # a configuration answer, not a fault of the upstream
            raise
        except UpstreamUnavailable:
            self._failed(ticket, "error", loop.time() - started)
            raise
        except WriteConflict:
            self.breaker.success(ticket)
            self._observe("ok", loop.time() - started)
            raise
        except BaseException:
            # Cancelled by the caller, or a bug: no news of the upstream.
            self.breaker.release(ticket)
            raise
        self.breaker.success(ticket)
        self._observe("ok", loop.time() - started)
        return result

    async def _attempts(self, call: Callable[[], Awaitable[T]], retries: int) -> T:
        attempt = 0
        while True:
            try:
                return await call()
            except RegionNotServed:
                raise
            except UpstreamUnavailable:
                if attempt >= retries:
                    raise
            attempt += 1
            self.stats.retries += 1
            # Full jitter (AWS architecture blog): spreads retries of many callers apart.
            await asyncio.sleep(random.uniform(0, self.policy.backoff * 2**attempt))

    def _failed(self, ticket: Ticket, result: str, seconds: float) -> None:
        self.stats.failures += 1
        self.breaker.failure(ticket)
        self._observe(result, seconds)

    def _observe(self, result: str, seconds: float) -> None:
        for observer in self.observers:
            observer(self.upstream, result, seconds)
