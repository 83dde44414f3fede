"""Issue 6, item 2: the shared permit cache never carries data past the field policy.

A client with every permit scope warms the cache; then clients with every other combination
of scopes ask for random selections of the same permits' fields. Whatever the cache holds, a
client gets exactly the fields it selected and may see, or FORBIDDEN with no data at all.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schema.policy import FIELD_SCOPES
from tests.conftest import HubClient, Simulators

SCOPES = ("permit:validity", "permit:holder", "permit:detail")
# WorkPermit fields with a plain selection, and the scope each needs (from the policy table).
FIELDS = {
    "number": "number", "status": "status", "validUntil": "validUntil", "medium": "medium",
    "holder": "holder { name nationality }", "position": "position",
    "workLocation": "workLocation { code }", "category": "category",
}
PURPOSE = "benefits"
SUBSETS = [frozenset(c) for n in range(1, 4) for c in itertools.combinations(SCOPES, n)]


def _client_id(scopes: frozenset[str]) -> str:
    return "cache-" + "-".join(sorted(s.split(":")[1] for s in scopes))


def _needed(field: str) -> set[str]:
    needed = {FIELD_SCOPES[("WorkPermit", field)], FIELD_SCOPES[("Query", "permits")]}
    if field == "holder":
        needed |= {FIELD_SCOPES[("Foreigner", "name")], FIELD_SCOPES[("Foreigner", "nationality")]}
    return needed


@pytest.fixture
async def clients(hub: HubClient) -> HubClient:
    await hub.hub.auth.add_purpose(PURPOSE, ["permits"])
    for scopes in SUBSETS:
        _, secret = await hub.hub.auth.add_client(
            _client_id(scopes), "Cache test agency", sorted(scopes), [PURPOSE]
        )
        assert secret is not None
        hub.secrets[_client_id(scopes)] = secret
    return hub


async def _ask(hub: HubClient, client_id: str, fields: list[str], numbers: list[str]) -> Any:
    selection = " ".join(FIELDS[f] for f in fields)
    query = "query($n: [ID!]!) { permits(numbers: $n) { " + selection + " } }"
    return await hub.graphql(client_id, query, {"n": numbers}, purpose=PURPOSE)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    scopes=st.sampled_from(SUBSETS),
    fields=st.lists(st.sampled_from(sorted(FIELDS)), min_size=1, max_size=5, unique=True),
    which=st.lists(st.integers(0, 9), min_size=1, max_size=4, unique=True),
)
async def test_a_cached_permit_reaches_a_client_only_through_its_scopes(
    clients: HubClient,
    simulators: Simulators,
    scopes: frozenset[str],
    fields: list[str],
    which: list[int],
) -> None:
    numbers = [sorted(simulators.dataset.permits)[200 + i] for i in which]
    everything = await _ask(clients, _client_id(frozenset(SCOPES)), sorted(FIELDS), numbers)
    assert everything.status_code == 200  # the cache now holds these permits whole
    calls = await simulators.upstream_calls()

    response = await _ask(clients, _client_id(scopes), fields, numbers)

    allowed = all(_needed(f) <= scopes for f in fields)
    body = response.json()
    if not allowed:
        assert response.status_code == 403
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        assert "data" not in body or body["data"] is None
        assert await simulators.upstream_calls() == calls  # refused before any upstream call
        return
    assert response.status_code == 200, body
    assert await simulators.upstream_calls() == calls  # served from the cache
    for permit in body["data"]["permits"]:
        assert set(permit) == set(fields)
