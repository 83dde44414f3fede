"""Per-client counts in fixed one-minute windows, shared by every hub instance through the store.

`PerMinute` is the counter: one key per name, client and window, created with a TTL so it
needs no cleanup. `RateLimit` (requests per minute, each costing 1) and `CostBudget` (query cost
per minute) are the two limits built on it; the failure throttle of `auth` shares its windows.

A refused request is still counted: a client hammering over its limit stays refused. A fixed
window lets a client send up to twice its limit across a window boundary; that bound is
accepted for one atomic INCR per request, shared by every instance.

Clocks are injected (`clock`, wall-clock seconds) so that tests choose their window instead of
waiting for one. Never: put anything but a client id in a key (no tokens, no documents).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from infra.kv import Count, KeyValue

__all__ = ["WINDOW_SECONDS", "BudgetDecision", "CostBudget", "PerMinute", "RateLimit", "window"]

WINDOW_SECONDS = 60

Clock = Callable[[], float]


def window(now: float) -> tuple[int, int]:
    """The number of the window `now` falls in, and the whole seconds left in it (at least 1)."""
    number = int(now // WINDOW_SECONDS)
    return number, max(1, WINDOW_SECONDS * (number + 1) - math.floor(now))


@dataclass(frozen=True, slots=True)
class BudgetDecision:
    allowed: bool
    spent: int  # in the current minute, this request included
    retry_after: int  # seconds until the window resets (0 if allowed)


class PerMinute:
    """Counts per client in fixed one-minute windows, at most `per_minute` allowed in each."""

    def __init__(
        self, kv: KeyValue, per_minute: int, name: str, clock: Clock = time.time
    ) -> None:
        self._kv = kv
        self._per_minute = per_minute
        self._name = name  # the keys' namespace: one per limit
        self.clock = clock

    async def charge(self, client_id: str, amount: int, now: float | None = None) -> BudgetDecision:
        """Add `amount` to the client's count in the current window and decide on it."""
        now = self.clock() if now is None else now
        count = self.count(client_id, amount, now)
        spent = await self._kv.incr(count.key, count.amount, count.ttl_seconds)
        return self.decide(spent, now)

    def count(self, client_id: str, amount: int, now: float | None = None) -> Count:
        """The counter `charge` adds to, for a caller that counts it with other keys at once."""
        number, _ = window(self.clock() if now is None else now)
        return Count(f"{self._name}:{client_id}:{number}", amount, WINDOW_SECONDS)

    def decide(self, spent: int, now: float | None = None) -> BudgetDecision:
        """The decision on a request that brought the window's total to `spent`."""
        if spent <= self._per_minute:
            return BudgetDecision(True, spent, 0)
        return BudgetDecision(False, spent, window(self.clock() if now is None else now)[1])


class RateLimit(PerMinute):
    """GraphQL requests per client and minute; each request counts 1."""

    def __init__(self, kv: KeyValue, per_minute: int, clock: Clock = time.time) -> None:
        super().__init__(kv, per_minute, "rate", clock)


class CostBudget(PerMinute):
    """Estimated query cost per client and minute (the cost itself is `schema.limits`')."""

    def __init__(self, kv: KeyValue, per_minute: int, clock: Clock = time.time) -> None:
        super().__init__(kv, per_minute, "cost", clock)
