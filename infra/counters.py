"""Per-client counts in fixed one-minute windows: counted in the process, reconciled in the store.

`PerMinute` is the limit: one counter per name, client and window. `RateLimit` (requests per
minute, each costing 1) and `CostBudget` (query cost per minute) are the two built on it. The
counters themselves are `Counters`, one per process: a request is decided at once on the total
the store last reported plus what this process counted since, and never waits on the store.
Every `sync_seconds` a background task sends what the process counted, for every counter at
once, in one round trip (`KeyValue.incr_many`: INCRBY and PEXPIRE per counter, and a read of
the counters it holds but did not count on), and takes the store's totals back.

What one instance cannot see is what the others counted since its last sync: a count reaches
the store within `sync_seconds` plus two round trips of being made (the next sync, and that
sync's own), and another instance reads it within as long again. So across N instances a
client gets up to what it sends to the N - 1 others in twice that span beyond its limit
(README.md, "Rate limits and cost budgets"); with one instance, or the in-process store,
the count is exact. When the store cannot be reached, counting goes on in each process on
its own (each still holds the client to the limit) and each sync retries with what is
still unsent; a reply lost after the store applied it counts twice, which errs on refusing.

A refused request is still counted: a client hammering over its limit stays refused. A fixed
window lets a client send up to twice its limit across a window boundary; that bound is
accepted for counters that need no cleanup (each key has a TTL).

Clocks are injected (`clock`, wall-clock seconds) so that tests choose their window instead of
waiting for one. Never: put anything but a client id in a key (no tokens, no documents).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from infra.kv import Count, KeyValue, KeyValueUnavailable

__all__ = [
    "WINDOW_SECONDS", "BudgetDecision", "CostBudget", "Counters", "PerMinute", "RateLimit",
    "window",
]

log = logging.getLogger("infra.counters")

WINDOW_SECONDS = 60

Clock = Callable[[], float]


def window(now: float) -> tuple[int, int]:
    """The number of the window `now` falls in, and the whole seconds left in it (at least 1)."""
    number = int(now // WINDOW_SECONDS)
    return number, max(1, WINDOW_SECONDS * (number + 1) - math.floor(now))


@dataclass(slots=True)
class _Counter:
    """One counter as this process knows it: the store's total at the last sync (this
    process's own counts it had sent included), what the sync under way carries, what waits
    for the next one."""

    ttl_seconds: float
    used: float  # monotonic time of its last count
    known: int = 0
    sending: int = 0
    unsent: int = 0

    @property
    def total(self) -> int:
        return self.known + self.sending + self.unsent


class Counters:
    """This process's counters, reconciled with the shared store every `sync_seconds`.

    `add` decides nothing and awaits nothing: it returns the counter's total as far as this
    process knows it. With a store that is not shared (the in-process one) there is nothing to
    reconcile: the counts are the process's own and exact. A counter not counted on for two
    windows is forgotten (its window is over), sent or not.
    """

    def __init__(
        self, kv: KeyValue, sync_seconds: float, monotonic: Clock = time.monotonic
    ) -> None:
        self._kv = kv
        self._sync_seconds = sync_seconds
        self._monotonic = monotonic
        self._counters: dict[str, _Counter] = {}
        self._lock = asyncio.Lock()  # one sync at a time: `sending` is that sync's alone
        self._task: asyncio.Task[None] | None = None
        self._failing = False
        self.syncs = 0  # syncs done (tests wait on it rather than on time)

    def add(self, key: str, amount: int, ttl_seconds: float) -> int:
        """Count `amount` on `key`: the counter's total as this process knows it, this
        amount included. A counter the store has not seen yet gets `ttl_seconds` there."""
        counter = self._counters.get(key)
        if counter is None:
            counter = self._counters[key] = _Counter(ttl_seconds, self._monotonic())
        else:
            counter.used = self._monotonic()
        counter.unsent += amount
        return counter.total

    @property
    def unsent(self) -> int:
        """What this process counted that the store has not acknowledged yet."""
        return sum(c.sending + c.unsent for c in self._counters.values())

    def start(self) -> None:
        """Reconcile in the background from now on (with the in-process store: forget)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._sync_seconds)
            try:
                await self.sync()
            except Exception:  # a reconciler that died would leave every instance alone
                log.exception("counter sync failed; retrying at the next interval")

    async def sync(self) -> bool:
        """Send what was counted, learn the store's totals; False if the store did not answer
        (what was to be sent is kept for the next sync)."""
        async with self._lock:
            self._forget(self._monotonic() - 2 * WINDOW_SECONDS)
            if self._kv.shared and self._counters:
                try:
                    await self._exchange()
                except KeyValueUnavailable as exc:
                    if not self._failing:
                        log.warning("shared store unavailable (%s); rates and budgets are"
                                    " counted in this process until it answers", exc)
                    self._failing = True
                    return False
                if self._failing:
                    log.info("shared store answers again; counts reconciled")
                self._failing = False
            self.syncs += 1
            return True

    async def _exchange(self) -> None:
        """One round trip: the counters with something to send add it and give their totals,
        the others are read."""
        counted = [c for c in self._counters.items() if c[1].unsent]
        others = [k for k, c in self._counters.items() if not c.unsent]
        for _, counter in counted:
            counter.sending, counter.unsent = counter.unsent, 0
        try:
            totals, values = await self._kv.incr_many(
                [Count(k, c.sending, c.ttl_seconds) for k, c in counted], others
            )
        except BaseException:  # unavailable, or cancelled: what was not sent stays to send
            for _, counter in counted:
                counter.unsent += counter.sending
                counter.sending = 0
            raise
        for (_, counter), total in zip(counted, totals, strict=True):
            counter.known, counter.sending = total, 0
        for key, value in zip(others, values, strict=True):
            if (held := self._counters.get(key)) is not None:
                held.known = int(value or 0)

    def _forget(self, before: float) -> None:
        for key in [k for k, c in self._counters.items() if c.used < before]:
            del self._counters[key]

    async def close(self) -> None:
        """Stop reconciling; send what is left (once, within the store's deadline)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._kv.shared and self.unsent:
            await self.sync()


@dataclass(frozen=True, slots=True)
class BudgetDecision:
    allowed: bool
    spent: int  # in the current minute, this request included
    retry_after: int  # seconds until the window resets (0 if allowed)


class PerMinute:
    """Counts per client in fixed one-minute windows, at most `per_minute` allowed in each."""

    def __init__(
        self, counters: Counters, per_minute: int, name: str, clock: Clock = time.time
    ) -> None:
        self._counters = counters
        self._per_minute = per_minute
        self._name = name  # the keys' namespace: one per limit
        self.clock = clock

    def charge(self, client_id: str, amount: int, now: float | None = None) -> BudgetDecision:
        """Add `amount` to the client's count in the current window and decide on it, at once."""
        now = self.clock() if now is None else now
        number, left = window(now)
        spent = self._counters.add(f"{self._name}:{client_id}:{number}", amount, WINDOW_SECONDS)
        if spent <= self._per_minute:
            return BudgetDecision(True, spent, 0)
        return BudgetDecision(False, spent, left)


class RateLimit(PerMinute):
    """GraphQL requests per client and minute; each request counts 1."""

    def __init__(self, counters: Counters, per_minute: int, clock: Clock = time.time) -> None:
        super().__init__(counters, per_minute, "rate", clock)


class CostBudget(PerMinute):
    """Estimated query cost per client and minute (the cost itself is `schema.limits`')."""

    def __init__(self, counters: Counters, per_minute: int, clock: Clock = time.time) -> None:
        super().__init__(counters, per_minute, "cost", clock)
