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

The breaker opens after `failure_threshold` consecutive failures (timeouts included), fails
fast for `open_seconds`, then lets one trial call through (half-open): success closes it,
failure opens it again. While one upstream is down, calls to the others are untouched: each
has its own slots and breaker, which keeps the queries that do not need it as fast as before.
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

__all__ = ["BreakerState", "CircuitBreaker", "Guard", "GuardStats", "Policy"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Policy:
    timeout: float = 2.0
    retries: int = 2  # extra attempts for a safe read
    backoff: float = 0.05  # base of the full-jitter backoff, seconds
    max_concurrency: int = 50
    failure_threshold: int = 5
    open_seconds: float = 10.0


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    def __init__(
        self, threshold: int, open_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._threshold = threshold
        self._open_seconds = open_seconds
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_running = False

    @property
    def state(self) -> BreakerState:
        if self._opened_at is None:
            return BreakerState.CLOSED
        if self._clock() - self._opened_at >= self._open_seconds:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    def allow(self) -> bool:
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.HALF_OPEN and not self._trial_running:
            self._trial_running = True  # one trial at a time; the rest still fail fast
            return True
        return False

    def success(self) -> None:
        self._failures = 0
        self._opened_at = None
        self._trial_running = False

    def release(self) -> None:
        """The trial call ended without telling anything: let the next one try."""
        self._trial_running = False

    def failure(self) -> None:
        self._failures += 1
        if self._trial_running or self._failures >= self._threshold:
            self._opened_at = self._clock()
        self._trial_running = False


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
        self.breaker = CircuitBreaker(policy.failure_threshold, policy.open_seconds, clock)
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
        if not self.breaker.allow():
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
            self._failed("timeout", loop.time() - started)
            raise UpstreamTimeout(self.upstream, f"no answer within {deadline:g} s") from None
        except UpstreamTimeout:
            self.stats.timeouts += 1
            self._failed("timeout", loop.time() - started)
            raise
        except RegionNotServed:
            self.breaker.success()  # a configuration answer, not a fault of the upstream
            raise
        except UpstreamUnavailable:
            self._failed("error", loop.time() - started)
            raise
        except WriteConflict:
            self.breaker.success()
            self._observe("ok", loop.time() - started)
            raise
        except BaseException:
            self.breaker.release()  # cancelled by the caller, or a bug: no news of the upstream
            raise
        self.breaker.success()
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

    def _failed(self, result: str, seconds: float) -> None:
        self.stats.failures += 1
        self.breaker.failure()
        self._observe(result, seconds)

    def _observe(self, result: str, seconds: float) -> None:
        for observer in self.observers:
            observer(self.upstream, result, seconds)
