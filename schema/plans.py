"""Compiled plans: a checked document answered straight from the permit records it reads.

The hottest requests (a counter checking one permit's validity, an agency checking a list of
numbers) select a permit's own fields and its holder's, employer's and region's. graphql-core
spends most of such a request's GraphQL time on machinery the document does not need: a
resolve info and a strawberry argument conversion per field, awaitable checks, completion per
value. A plan is compiled once per document and operation when every field it selects reads the
permit record and nothing else (a `read` in its entry of `schema.fields`); it runs only when
every permit the request names is already in hand (all cache hits), so it never waits, never
calls a source system and cannot fail. Anything else (fragments, directives, a repeated response
key, a field served by another source system, a permit not yet read) runs on graphql-core as
before.

A plan runs after every check of the request path (policy included): it changes how an
admitted document is answered, never what may be selected. It binds rows as the executor does
(`schema.rows`): a permit outside the caller's jurisdiction whose bound fields a root selects is
null at its path with the executor's OUT_OF_JURISDICTION error, and is never looked up. When
more than one root would refuse, graphql-core answers (the order of its errors across roots is
the order its resolvers happen to finish in, which a plan cannot promise to repeat).
`tests/schema/test_plans.py` holds every plan to graphql-core's answer for the same document
and records, byte for byte.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    FieldNode,
    GraphQLError,
    GraphQLField,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    get_named_type,
    located_error,
)
from graphql.execution.values import VariableValues, get_argument_values

from connectors.records import Permit
from schema.document import PreparedDocument
from schema.fields import FIELDS, Reader, entry
from schema.rows import OutOfJurisdiction, RowGuard, permit_triggers

__all__ = ["Plan", "PlanCache", "Planned"]

# The types a plan may descend into: those with fields read from their parent's record. Each
# reader mirrors the field's resolver in `schema.types`; the plan tests compare both on random
# documents over the synthetic permits.
_PLANNED_TYPES = frozenset(key.partition(".")[0] for key, f in FIELDS.items() if f.read)
_ROOTS = frozenset({"permit", "permits"})


class _Unanswerable(Exception):
    """The plan cannot give graphql-core's answer for this request: graphql-core runs it."""


@dataclass(frozen=True, slots=True)
class _Field:
    key: str  # the response key (alias or name)
    read: Reader
    serialize: Callable[[Any], Any] | None  # leaves; None for objects
    children: tuple[_Field, ...]
    non_null: bool
    arguments: tuple[GraphQLField, FieldNode] | None  # when the field takes arguments


@dataclass(frozen=True, slots=True)
class _Root:
    key: str
    many: bool  # `permits(numbers:)` rather than `permit(number:)`
    definition: GraphQLField
    node: FieldNode
    children: tuple[_Field, ...]
    bound: bool  # selects a bound field of the permit: its region must be in jurisdiction


@dataclass(frozen=True, slots=True)
class Planned:
    """A plan's answer: `data`, and the rows it refused as graphql-core would report them."""

    data: dict[str, Any]
    errors: list[GraphQLError]


@dataclass(frozen=True, slots=True)
class Plan:
    roots: tuple[_Root, ...]

    def run(
        self,
        variables: VariableValues,
        known: Mapping[str, Permit],
        today: dt.date,
        rows: RowGuard | None = None,
    ) -> Planned | None:
        """The answer, or None when graphql-core must answer instead. `rows`: the caller's
        jurisdiction when the request's rows are bound (as `HubContext.rows`)."""
        data: dict[str, Any] = {}
        errors: list[GraphQLError] = []
        refusing_roots = 0
        try:
            for root in self.roots:
                arguments = get_argument_values(root.definition, root.node, variables)
                if rows is not None and root.bound:
                    before = len(errors)
                    data[root.key] = _bound_root(root, arguments, known, variables, today, rows,
                                                 errors)
                    refusing_roots += len(errors) > before
                elif root.many:  # national: exactly as before rows were bound
                    data[root.key] = [
                        _object(_permit(known, n), root.children, variables, today)
                        for n in arguments["numbers"]
                    ]
                else:
                    permit = _permit(known, arguments["number"])
                    data[root.key] = _object(permit, root.children, variables, today)
        except _Unanswerable:
            return None
        if refusing_roots > 1:
            return None
        return Planned(data, errors)


def _bound_root(
    root: _Root,
    arguments: Mapping[str, Any],
    known: Mapping[str, Permit],
    variables: VariableValues,
    today: dt.date,
    rows: RowGuard,
    errors: list[GraphQLError],
) -> Any:
    """A root whose permits are bound: each outside the jurisdiction is null with the
    executor's refusal at its path (`schema.rows`), and is never looked up."""

    def one(number: object, path: list[str | int]) -> dict[str, Any] | None:
        if not rows.covers_permit(str(number)):
            rows.refused.add(str(number))
            errors.append(located_error(OutOfJurisdiction(), [root.node], path))
            return None
        return _object(_permit(known, number), root.children, variables, today)

    if root.many:
        return [one(n, [root.key, i]) for i, n in enumerate(arguments["numbers"])]
    return one(arguments["number"], [root.key])


def _permit(known: Mapping[str, Permit], number: object) -> Permit:
    permit = known.get(str(number))
    if permit is None:  # not read for this request: only a load can say what it is
        raise _Unanswerable
    return permit


def _object(
    record: Any, fields: tuple[_Field, ...], variables: VariableValues, today: dt.date
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields:
        arguments = get_argument_values(*f.arguments, variables) if f.arguments else {}
        value = f.read(record, arguments, today)
        if value is None:
            if f.non_null:  # graphql-core would answer with an error here
                raise _Unanswerable
            out[f.key] = None
        elif f.serialize is not None:
            out[f.key] = f.serialize(value)
        else:
            out[f.key] = _object(value, f.children, variables, today)
    return out


def _typename(name: str) -> Reader:
    return lambda record, a, t: name


def _compile_fields(
    parent: GraphQLObjectType, selections: SelectionSetNode
) -> tuple[_Field, ...] | None:
    if parent.name not in _PLANNED_TYPES:
        return None
    fields: list[_Field] = []
    keys: set[str] = set()
    for node in selections.selections:
        if not isinstance(node, FieldNode) or node.directives:
            return None  # fragments, @skip, @include: merging rules graphql-core applies
        key = node.alias.value if node.alias else node.name.value
        if key in keys:
            return None
        keys.add(key)
        name = node.name.value
        if name == "__typename":
            fields.append(_Field(key, _typename(parent.name), str, (), True, None))
            continue
        found = entry(parent.name, name)
        read = found.read if found is not None else None
        definition = parent.fields.get(name)
        if read is None or definition is None:
            return None
        named = get_named_type(definition.type)
        arguments = (definition, node) if definition.args else None
        non_null = isinstance(definition.type, GraphQLNonNull)
        if isinstance(named, GraphQLObjectType):
            if node.selection_set is None:
                return None
            children = _compile_fields(named, node.selection_set)
            if children is None:
                return None
            fields.append(_Field(key, read, None, children, non_null, arguments))
        else:
            serialize = getattr(named, "serialize", None)
            if serialize is None or node.selection_set is not None:
                return None
            fields.append(_Field(key, read, serialize, (), non_null, arguments))
    return tuple(fields)


def _compile_root(schema: GraphQLSchema, node: FieldNode) -> _Root | None:
    query = schema.query_type
    name = node.name.value
    if query is None or name not in _ROOTS or node.directives or node.selection_set is None:
        return None
    definition = query.fields[name]
    permit_type = get_named_type(definition.type)
    if not isinstance(permit_type, GraphQLObjectType):
        return None
    many = isinstance(definition.type, GraphQLNonNull) and isinstance(
        definition.type.of_type, GraphQLList
    )
    children = _compile_fields(permit_type, node.selection_set)
    if children is None:
        return None
    key = node.alias.value if node.alias else name
    triggers = permit_triggers()
    bound = any(
        isinstance(n, FieldNode) and n.name.value in triggers
        for n in node.selection_set.selections
    )
    return _Root(key, many, definition, node, children, bound)


def compile_plan(schema: GraphQLSchema, operation: OperationDefinitionNode) -> Plan | None:
    """The plan of a validated query operation, or None if graphql-core must run it."""
    if operation.operation is not OperationType.QUERY or operation.directives:
        return None
    roots: list[_Root] = []
    keys: set[str] = set()
    for node in operation.selection_set.selections:
        if not isinstance(node, FieldNode):
            return None
        root = _compile_root(schema, node)
        if root is None or root.key in keys:
            return None
        keys.add(root.key)
        roots.append(root)
    return Plan(tuple(roots)) if roots else None


class PlanCache:
    """Plans by document and operation (None cached too: most documents have no plan)."""

    def __init__(self, schema: GraphQLSchema, size: int = 1024) -> None:
        self._schema = schema
        self._size = size
        self._plans: dict[tuple[str, str | None], Plan | None] = {}

    def get(self, prepared: PreparedDocument, operation: OperationDefinitionNode) -> Plan | None:
        # A validated document names its operations uniquely (or has one, anonymous).
        key = (prepared.text_hash, operation.name.value if operation.name else None)
        try:
            return self._plans[key]
        except KeyError:
            pass
        plan = compile_plan(self._schema, operation)
        if len(self._plans) >= self._size:
            self._plans.clear()
        self._plans[key] = plan
        return plan
