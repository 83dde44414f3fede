"""Issue 6 (item 3): a per-client query cost budget per minute, shared through Redis
(counted in each process, reconciled in the background: tests/infra/test_counters.py)."""

from __future__ import annotations

from infra.counters import CostBudget, RateLimit
from tests.conftest import HubClient, Simulators


def _clear_of_a_window_boundary() -> float:
    """Budgets are fixed one-minute windows: a run that crossed into the next one would see
    its spent budget renewed (it did once in CI). The hub's counters take this fixed clock,
    five seconds into a window, instead of waiting for one with enough of it left."""
    return 600.0 + 5.0


async def test_a_spent_budget_is_refused_with_retry_after_and_no_upstream_call(
    hub: HubClient, simulators: Simulators
) -> None:
    clock = _clear_of_a_window_boundary
    counters = hub.hub.counters
    hub.hub.cost_budget = CostBudget(counters, per_minute=40, clock=clock)
    hub.hub.rate_limit = RateLimit(counters, hub.hub.settings.rate_limit_per_minute, clock=clock)
    query = "query($n: ID!) { permit(number: $n) { status validUntil } }"
    variables = {"n": simulators.dataset.samples["valid_permit"]}
    statuses = []
    for _ in range(20):
        response = await hub.graphql("exit-entry-wuhan", query, variables)
        statuses.append(response.status_code)
        if response.status_code == 429:
            break
    assert statuses[0] == 200 and statuses[-1] == 429
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "RATE_LIMITED"
    assert 1 <= int(response.headers["retry-after"]) <= 60
    before = await simulators.upstream_calls()
    again = await hub.graphql("exit-entry-wuhan", query, variables)
    assert again.status_code == 429 and await simulators.upstream_calls() == before
    # another client's budget is its own
    other = await hub.graphql("si-agency-wuhan", query, variables)
    assert other.status_code == 200
