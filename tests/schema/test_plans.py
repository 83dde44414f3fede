"""Compiled plans (`schema.plans`) answer exactly what graphql-core answers, or not at all.

Random documents over the fields a plan can read are answered both ways: by the plan, from
the permits the WMS simulator returns, and by graphql-core through the hub's own loaders and
the WMS. The two answers must be the same bytes. Documents a plan cannot answer (fragments,
directives, fields served by other systems) must get no plan, and so run on graphql-core.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson
import pytest
from graphql import OperationDefinitionNode
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from observability.audit import AuditFilter
from schema import GraphQLRequest
from schema.pipeline import Admission
from schema.plans import compile_plan
from schema.policy import FIELD_SCOPES
from schema.purposes import ROOT_FIELDS
from tests.conftest import HubClient, Simulators

EVERY_SCOPE = frozenset(FIELD_SCOPES.values())
REGION = ["code", "name", "__typename"]
OBJECTS = {
    "holder": ["id", "name", "nationality", "passportNumber", "dateOfBirth", "gender",
               "__typename"],
    "employer": ["creditCode", "name", "__typename", "region { code name }"],
    "workLocation": REGION,
}
LEAVES = ["number", "status", "validFrom", "validUntil", "isValid", 'isValid(on: "2020-03-01")',
          "isValid(on: $on)", "medium", "category", "position", "notificationLetterNumber",
          "__typename"]


@st.composite
def _selection(draw: st.DrawFn) -> str:
    names = draw(st.lists(st.sampled_from(LEAVES + sorted(OBJECTS)), min_size=1, max_size=7,
                          unique=True))
    parts = []
    for i, name in enumerate(names):
        alias = f"a{i}: " if name.startswith("isValid") or draw(st.booleans()) else ""
        if name in OBJECTS:
            inner = draw(st.lists(st.sampled_from(OBJECTS[name]), min_size=1, unique=True))
            parts.append(f"{alias}{name} {{ {' '.join(inner)} }}")
        else:
            parts.append(alias + name)
    return " ".join(parts)


async def _admit(hub: HubClient, query: str, variables: dict[str, Any]) -> Admission:
    admitted = await hub.hub.graphql.admit(
        GraphQLRequest(query, variables), scopes=EVERY_SCOPE, purpose="plans",
        covers=ROOT_FIELDS, trace_id="0" * 32,
    )
    assert isinstance(admitted, Admission), admitted
    return admitted


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    selection=_selection(),
    many=st.booleans(),
    which=st.lists(st.integers(0, 1499), min_size=1, max_size=4),
    on=st.sampled_from([None, "2019-12-31", "2026-06-30", "2031-01-01"]),
)
async def test_a_plan_answers_byte_for_byte_what_graphql_core_answers(
    hub: HubClient, simulators: Simulators, selection: str, many: bool, which: list[int],
    on: str | None,
) -> None:
    numbers = sorted(simulators.dataset.permits)
    chosen = [numbers[i * len(numbers) // 1500] for i in which]
    uses_on = "$on" in selection
    params = ("$ns: [ID!]!" if many else "$n: ID!") + (", $on: Date" if uses_on else "")
    root = "permits(numbers: $ns)" if many else "permit(number: $n)"
    query = f"query Q({params}) {{ {root} {{ {selection} }} }}"
    variables: dict[str, Any] = {"ns": chosen} if many else {"n": chosen[0]}
    if uses_on and on is not None:
        variables["on"] = on
    admission = await _admit(hub, query, variables)
    today = dt.date.today()

    by_graphql_core = await hub.hub.graphql.execute(
        admission, GraphQLRequest(query, variables), trace_id="0" * 32, today=today,
        jurisdiction=("*",),
    )
    known = await hub.hub.permits.permits(chosen)
    plan = compile_plan(hub.hub.graphql.schema._schema, admission.operation)
    assert plan is not None, query
    by_plan = plan.run(admission.variables, known, today)

    assert by_plan is not None and not by_plan.errors
    assert orjson.dumps({"data": by_plan.data}) == orjson.dumps(by_graphql_core.body), query


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    selection=_selection(),
    many=st.booleans(),
    which=st.lists(st.integers(0, 1499), min_size=1, max_size=4),
    jurisdiction=st.sampled_from([("420100",), ("420500",), ("42",), ("110000",), ("*",)]),
)
async def test_a_plan_binds_rows_as_graphql_core_does_byte_for_byte(
    hub: HubClient, simulators: Simulators, selection: str, many: bool, which: list[int],
    jurisdiction: tuple[str, ...],
) -> None:
    """The whole outcome (body with its refusals, audit outcome, denied paths, refused
    subjects) from the plan and from graphql-core, for a caller of each jurisdiction."""
    numbers = sorted(simulators.dataset.permits)
    chosen = [numbers[i * len(numbers) // 1500] for i in which]
    selection = selection.replace("$on", '"2026-06-30"')
    root = "permits(numbers: $ns)" if many else "permit(number: $n)"
    query = f"query Q({'$ns: [ID!]!' if many else '$n: ID!'}) {{ {root} {{ {selection} }} }}"
    variables: dict[str, Any] = {"ns": chosen} if many else {"n": chosen[0]}
    admission = await _admit(hub, query, variables)
    request, today, trace = GraphQLRequest(query, variables), dt.date.today(), "0" * 32
    known = await hub.hub.permits.permits(chosen)
    planned_before = hub.hub.graphql.stats.planned

    by_core = await hub.hub.graphql.execute(
        admission, request, trace_id=trace, today=today, jurisdiction=jurisdiction
    )
    by_plan = await hub.hub.graphql.execute(
        admission, request, trace_id=trace, today=today, jurisdiction=jurisdiction, known=known
    )

    assert hub.hub.graphql.stats.planned == planned_before + 1, query
    assert orjson.dumps(by_plan.body) == orjson.dumps(by_core.body), query
    assert (by_plan.outcome, by_plan.denied, by_plan.error_codes) == (
        by_core.outcome, by_core.denied, by_core.error_codes
    )
    denied = set(by_core.denied)
    refused = (
        {c for i, c in enumerate(chosen) if f"permits.{i}" in denied}
        if many else ({chosen[0]} if "permit" in denied else set())
    )
    assert refused <= set(by_plan.subjects) and refused <= set(by_core.subjects)


@pytest.mark.parametrize(
    "query",
    [
        "{ permit(number: $n) { ...F } } fragment F on WorkPermit { number }",
        "{ permit(number: $n) { ... on WorkPermit { number } } }",
        "{ permit(number: $n) { number @include(if: true) } }",
        "{ permit(number: $n) @skip(if: false) { number } }",
        "{ permit(number: $n) { number number } }",
        "{ permit(number: $n) { history { kind } } }",
        "{ permit(number: $n) { enrollment { ssn } } }",
        "{ permit(number: $n) { cards { status } } }",
        "{ permit(number: $n) { holder { permits { number } } } }",
        "{ permit(number: $n) { number } foreigner(permitNumber: $n) { name } }",
        "{ permit(number: $n) { number } __typename }",
        "{ a: permit(number: $n) { number } a: permit(number: $n) { status } }",
    ],
)
async def test_documents_a_plan_cannot_read_get_none(hub: HubClient, query: str) -> None:
    query = query.replace("{", "query Q($n: ID!) {", 1) if "$n" in query else query
    prepared = hub.hub.graphql.prepare(query)
    assert prepared.document is not None and not prepared.errors, prepared.errors
    (operation,) = [
        d for d in prepared.document.definitions if isinstance(d, OperationDefinitionNode)
    ]
    assert compile_plan(hub.hub.graphql.schema._schema, operation) is None


async def test_a_planned_answer_is_the_cold_answer_and_is_audited_the_same(
    hub: HubClient, simulators: Simulators
) -> None:
    number = simulators.dataset.samples["valid_permit"]
    query = ("query V($n: ID!) { permit(number: $n) { number status validUntil isValid "
             "holder { name nationality } } }")
    client = "exit-entry-wuhan"
    planned_before = hub.hub.graphql.stats.planned

    cold = await hub.graphql(client, query, {"n": number})  # a cache miss: graphql-core
    warm = await hub.graphql(client, query, {"n": number})  # a cache hit: the plan

    assert hub.hub.graphql.stats.planned == planned_before + 1
    assert cold.status_code == warm.status_code == 200
    assert cold.content == warm.content and b'"errors"' not in warm.content
    page = await hub.hub.audit.search(
        AuditFilter(client_id=client, operation="V"), 2, None, subject_view=False,
        today=dt.date.today(),
    )
    newer, older = page.records
    assert newer.id == warm.headers["x-hub-audit-record"]
    assert (newer.fields, newer.subjects, newer.outcome) == (
        older.fields, older.subjects, older.outcome
    )
    assert number in newer.subjects and "WorkPermit.isValid" in newer.fields
