"""The per-minute counters: a client's count in its window, refused past the limit."""

from __future__ import annotations

import pytest

from infra.counters import CostBudget, RateLimit
from infra.kv import MemoryKeyValue


@pytest.mark.parametrize("amounts", [[100, 100], [150, 60]])
async def test_cost_budget_refuses_past_the_minute_budget(amounts: list[int]) -> None:
    budget = CostBudget(MemoryKeyValue(), per_minute=200)
    first = await budget.charge("c", amounts[0], now=600.0)
    second = await budget.charge("c", amounts[1], now=615.0)
    assert first.allowed
    assert second.allowed == (sum(amounts) <= 200)
    if not second.allowed:
        assert second.retry_after == 45
    assert (await budget.charge("other", 10, now=615.0)).allowed
    assert (await budget.charge("c", 10, now=660.0)).allowed  # a new window


async def test_the_rate_limit_counts_requests_in_the_clocks_window() -> None:
    now = [600.0]
    limit = RateLimit(MemoryKeyValue(), per_minute=2, clock=lambda: now[0])
    assert (await limit.charge("c", 1)).allowed
    now[0] = 640.0
    assert (await limit.charge("c", 1)).allowed
    refused = await limit.charge("c", 1)
    assert not refused.allowed and refused.spent == 3 and refused.retry_after == 20
    now[0] = 660.0  # the next window
    assert (await limit.charge("c", 1)).allowed
