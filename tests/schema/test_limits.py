"""Query limits: the static shape before validation, the cost once per document, per request."""

from __future__ import annotations

from graphql import GraphQLError, get_introspection_query

from schema.document import DocumentCache
from schema.limits import (
    CONNECTOR_FIELD_COST,
    DEFAULT_LIST_SIZE,
    Limits,
    QueryLimits,
    check_size,
)
from schema.schema import build_schema

SCHEMA = build_schema()._schema


def _limits(**overrides: int) -> tuple[QueryLimits, DocumentCache]:
    limits = QueryLimits(SCHEMA, Limits(**overrides))
    return limits, DocumentCache(SCHEMA, parse_document=limits.parse)


def _refusal(text: str, **overrides: int) -> GraphQLError:
    _, documents = _limits(**overrides)
    prepared = documents.get(text)
    assert prepared.document is None
    (error,) = prepared.errors
    assert error.extensions is not None and error.extensions["code"] == "QUERY_TOO_COMPLEX"
    return error


def _nested(levels: int) -> str:
    body = "name"
    for _ in range(levels):
        body = f"holder {{ permits {{ {body.replace('name', 'number')} }} }}"
    return f'{{ permit(number: "1") {{ {body} }} }}'


def test_depth_counts_fields_through_fragments() -> None:
    text = """{ permit(number: "1") { ...A } }
      fragment A on WorkPermit { holder { ...B } }
      fragment B on Foreigner { permits { holder { permits { holder { permits { holder {
        permits { holder { name } } } } } } } } }"""
    error = _refusal(text)
    assert error.message == "max_depth is 11, over the limit of 10"


def test_depth_at_the_limit_passes_validation() -> None:
    _, documents = _limits(max_depth=5)
    ok = documents.get('{ permit(number: "1") { holder { permits { holder { name } } } } }')
    assert ok.errors == ()
    assert _refusal(_nested(3), max_depth=5).extensions["value"] == 8  # type: ignore[index]


def test_fragment_cycles_are_left_to_validation() -> None:
    _, documents = _limits()
    prepared = documents.get(
        '{ permit(number: "1") { ...A } } fragment A on WorkPermit { holder { permits { ...A } } }'
    )
    assert prepared.errors and "cannot spread fragment" in prepared.errors[0].message.lower()


def test_aliases_are_counted_before_validation() -> None:
    text = "{ " + " ".join(f"a{i}: __typename" for i in range(31)) + " }"
    assert _refusal(text).message == "max_aliases is 31, over the limit of 30"


def test_root_fields_include_fragments() -> None:
    text = (
        "query { ...R ...R2 } fragment R on Query { __typename } fragment R2 on Query { "
        + (" ".join("__typename" for _ in range(20)))
        + " }"
    )
    assert _refusal(text).extensions["limit"] == "max_root_fields"  # type: ignore[index]


def test_repeated_fields_are_refused_before_quadratic_validation() -> None:
    text = '{ permit(number: "1") { ' + " ".join("holder { name }" for _ in range(250)) + " } }"
    assert _refusal(text).extensions["limit"] == "max_fields"  # type: ignore[index]


def test_token_limit_is_a_setting() -> None:
    error = _refusal("{ " + "__typename " * 60 + "}", max_tokens=50)
    assert error.extensions["limit"] == "max_tokens"  # type: ignore[index]


def test_document_size_is_checked_in_bytes() -> None:
    limits = Limits(max_document_bytes=100)
    assert check_size("{ __typename }", limits) is None
    assert check_size("#" + "é" * 60, limits) is not None  # 121 bytes, 61 characters
    refused = check_size("x" * 101, limits)
    assert refused is not None and refused.message == (
        "max_document_bytes is 101, over the limit of 100"
    )


def test_standard_introspection_passes_and_costs_nothing() -> None:
    limits, documents = _limits()
    prepared = documents.get(get_introspection_query())
    assert prepared.errors == ()
    assert limits.cost(prepared, None, None) == 0


BATCH = """query($ns: [ID!]!) {
  permits(numbers: $ns) { number status enrollment { ssn } cards { status } } }"""


def test_cost_of_a_batch_follows_the_number_of_permits() -> None:
    limits, documents = _limits()
    prepared = documents.get(BATCH)
    per_permit = 1 + 1 + CONNECTOR_FIELD_COST + 1 + CONNECTOR_FIELD_COST + DEFAULT_LIST_SIZE * 1
    for n in (0, 1, 3, 500):
        cost = limits.cost(prepared, None, {"ns": ["x"] * n})
        assert cost == CONNECTOR_FIELD_COST + n * per_permit
    assert limits.cost(prepared, None, {"ns": "single"}) == CONNECTOR_FIELD_COST + per_permit


def test_cost_plan_is_built_once_per_document() -> None:
    limits, documents = _limits()
    prepared = documents.get(BATCH)
    assert limits.plan(prepared) is limits.plan(prepared)


def test_literal_lists_and_first_arguments_size_their_lists() -> None:
    limits, documents = _limits()
    literal = documents.get('{ permits(numbers: ["a", "b"]) { number } }')
    assert limits.cost(literal, None, None) == CONNECTOR_FIELD_COST + 2
    log = documents.get("query($n: Int = 20) { accessLog(first: $n) { edges { node { id } } } }")
    assert limits.cost(log, None, {}) == CONNECTOR_FIELD_COST + 20 * 3
    assert limits.cost(log, None, {"n": 100}) == CONNECTOR_FIELD_COST + 100 * 3
    default = documents.get("{ accessLog { edges { cursor } } }")
    assert limits.cost(default, None, None) == CONNECTOR_FIELD_COST + 50 * 2


def test_over_the_cost_limit_names_the_value() -> None:
    limits, documents = _limits(max_cost=100)
    prepared = documents.get(BATCH)
    assert limits.check_cost(limits.cost(prepared, None, {"ns": ["x"] * 3})) is None
    refused = limits.check_cost(limits.cost(prepared, None, {"ns": ["x"] * 10}))
    assert refused is not None and refused.message == "max_cost is 235, over the limit of 100"


def test_nested_lists_multiply() -> None:
    limits, documents = _limits()
    prepared = documents.get(
        '{ permit(number: "1") { holder { permits { cards { history { status } } } } } }'
    )
    expected = 5 + 1 + 5 + 10 * (5 + 10 * (1 + 10 * 1))
    assert limits.cost(prepared, None, None) == expected


def test_operation_is_chosen_by_name() -> None:
    limits, documents = _limits()
    prepared = documents.get(
        'query A { permit(number: "1") { number } } query B { permits(numbers: ["1"]) { number } }'
    )
    assert limits.cost(prepared, "A", None) == 6
    assert limits.cost(prepared, "B", None) == 6
    assert limits.cost(prepared, None, None) is None
    assert limits.cost(prepared, "C", None) is None


def test_batch_items_add_up_across_aliases_fragments_literals_and_variables() -> None:
    limits, documents = _limits(max_batch_items=500)
    prepared = documents.get(
        """query($ns: [ID!]!, $more: [ID!]! = ["d", "e"]) {
          a: permits(numbers: $ns) { status }
          b: permits(numbers: ["x", "y", "z"]) { status }
          ...Again ...Defaulted
        }
        fragment Again on Query { c: permits(numbers: $ns) { number } }
        fragment Defaulted on Query { d: permits(numbers: $more) { number } }"""
    )
    assert not prepared.errors
    assert limits.check_batch_items(prepared, None, {"ns": ["n"] * 10}) is None
    refused = limits.check_batch_items(prepared, None, {"ns": ["n"] * 248})
    assert refused is not None  # 248 + 3 + 248 + 2 = 501
    assert refused.message == "max_batch_size is 501, over the limit of 500"
    assert limits.check_batch_items(prepared, None, {"ns": ["n"] * 247, "more": []}) is None
