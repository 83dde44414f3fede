"""Issue 6, item 7: generated GraphQL-ish documents and JSON bodies; zero 500s, zero leaks.

Hypothesis draws a bounded, derandomized corpus (generation only: the hub is async and shared,
so examples are collected first and then sent). schemathesis's GraphQL mode, which generates
operations from the schema itself, is in test_schemathesis.py.
"""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from tests.conftest import HubClient, Simulators
from tests.security._leaks import assert_safe_error

CLIENT = "si-agency-wuhan"
WORDS = [
    "{",
    "}",
    "(",
    ")",
    ":",
    "$n",
    "...",
    "@include(if: true)",
    "fragment F on WorkPermit",
    "query",
    "mutation",
    "permit",
    "permits",
    "number",
    "holder",
    "name",
    "status",
    "cards",
    "enrollment",
    "ssn",
    "__schema",
    "__typename",
    "numbers:",
    "[",
    "]",
    '"420100202400000018"',
    '"\\u0000"',
    "'; DROP TABLE x; --",
    "a:",
    "b:",
    "é",
    "\x00",
    "#",
    "\n",
    "1e999",
    "-0",
]

_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
_documents = st.lists(st.sampled_from(WORDS), max_size=40).map(" ".join) | st.text(max_size=200)
_payloads = st.one_of(
    st.fixed_dictionaries(
        {"query": _documents},
        optional={"variables": _json, "operationName": st.none() | st.text(max_size=10)},
    ),
    _json,
)


def _corpus(strategy: st.SearchStrategy[Any], count: int) -> list[Any]:
    drawn: list[Any] = []

    @settings(
        max_examples=count, deadline=None, database=None, derandomize=True, phases=[Phase.generate]
    )
    @given(strategy)
    def collect(example: Any) -> None:
        drawn.append(example)

    collect()
    return drawn


async def test_generated_requests_never_give_a_500_or_a_leak(
    hub: HubClient, simulators: Simulators
) -> None:
    token = await hub.token(CLIENT)
    headers = {
        "authorization": f"Bearer {token}",
        "x-purpose-of-use": "benefit-check",
        "content-type": "application/json",
    }
    statuses: set[int] = set()
    for payload in _corpus(_payloads, 100):
        response = await hub.http.post("/graphql", content=orjson.dumps(payload), headers=headers)
        statuses.add(response.status_code)
        if response.status_code >= 400 or "errors" in response.json():
            assert_safe_error(response, simulators.wms_url, simulators.cards_url)
    assert all(s < 500 for s in statuses), statuses
    assert (await hub.hub.audit.verify()).ok


async def test_generated_raw_bodies_never_give_a_500_or_a_leak(
    hub: HubClient, simulators: Simulators
) -> None:
    token = await hub.token(CLIENT)
    headers = {
        "authorization": f"Bearer {token}",
        "x-purpose-of-use": "benefit-check",
        "content-type": "application/json",
    }
    for body in _corpus(st.binary(max_size=300), 100):
        response = await hub.http.post("/graphql", content=body, headers=headers)
        assert_safe_error(response, simulators.wms_url, simulators.cards_url)
