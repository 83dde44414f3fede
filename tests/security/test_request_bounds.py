"""The batch bound holds per request, not per field: aliased batches add up.

`permits(numbers:)` takes at most HUB_MAX_BATCH_SIZE numbers; twenty aliased copies of it once
answered 10,000 permits in one response. The numbers of every batch field of a request count
together, literal or through variables alike, and a request over the bound is refused before
any source system is called.
"""

from __future__ import annotations

from typing import Any

from tests.conftest import HubClient, Simulators


def _aliased(copies: int, numbers: list[str] | None) -> str:
    """`copies` aliased `permits` fields: over `$ns` if `numbers` is None, else literal."""
    argument = "$ns" if numbers is None else "[" + ", ".join(f'"{n}"' for n in numbers) + "]"
    fields = " ".join(f"p{i}: permits(numbers: {argument}) {{ status }}" for i in range(copies))
    header = "query($ns: [ID!]!)" if numbers is None else "query"
    return f"{header} {{ {fields} }}"


def _code(body: dict[str, Any]) -> str:
    return str(body["errors"][0]["extensions"]["code"])


async def test_twenty_aliased_batches_of_500_are_refused_before_any_upstream_call(
    hub: HubClient, simulators: Simulators
) -> None:
    numbers = sorted(simulators.dataset.permits)[:500]
    response = await hub.graphql("exit-entry-wuhan", _aliased(20, None), {"ns": numbers})
    assert response.status_code == 400
    assert _code(response.json()) == "QUERY_TOO_COMPLEX"
    assert "data" not in response.json()
    assert await simulators.upstream_calls() == 0


async def test_batches_add_up_the_same_through_variables_and_literals(
    hub: HubClient, simulators: Simulators
) -> None:
    numbers = sorted(simulators.dataset.permits)[:300]  # 2 x 300 = 600, over 500
    literal = await hub.graphql("exit-entry-wuhan", _aliased(2, numbers))
    variables = await hub.graphql("exit-entry-wuhan", _aliased(2, None), {"ns": numbers})
    for refused in (literal, variables):
        assert refused.status_code == 400, refused.text
        assert _code(refused.json()) == "QUERY_TOO_COMPLEX"
        assert "600" in refused.json()["errors"][0]["message"]
    assert await simulators.upstream_calls() == 0


async def test_batches_within_the_bound_together_are_answered(
    hub: HubClient, simulators: Simulators
) -> None:
    numbers = sorted(simulators.dataset.permits)[:250]  # 2 x 250 = 500: at the bound
    response = await hub.graphql("exit-entry-wuhan", _aliased(2, None), {"ns": numbers})
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert len(data["p0"]) == len(data["p1"]) == 250


async def test_the_request_bound_follows_the_batch_setting(
    simulators: Simulators, database_url: str, tmp_path: Any
) -> None:
    from tests.conftest import open_hub

    numbers = sorted(simulators.dataset.permits)[:30]
    async with open_hub(simulators, database_url, tmp_path, max_batch_size=50) as client:
        refused = await client.graphql("exit-entry-wuhan", _aliased(2, None), {"ns": numbers})
        calls = await simulators.upstream_calls()
        fine = await client.graphql("exit-entry-wuhan", _aliased(1, None), {"ns": numbers})
    assert refused.status_code == 400 and _code(refused.json()) == "QUERY_TOO_COMPLEX"
    assert calls == 0
    assert fine.status_code == 200, fine.text
