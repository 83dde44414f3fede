"""The identifiers a refused request named: its subjects in the audit log.

    named_subjects(prepared, variables, bound) -> ("420100…", ...)

A request refused before it ran (field policy, limits, argument checks, purpose, rate) touched
no record, yet an auditor must find who tried to read a given person's data. This walks the
document's field uses (already in the cached `PreparedDocument`) and takes every value of an
identifier argument (`Argument.check` in `schema.fields`) or identifier input field
(`INPUT_IDENTIFIERS`), given as a literal or through a variable (or its default), inside input
objects and lists.

Only values that pass their validator and are a subject the audit log can be searched by
(`validate_subject`: permit numbers, SSNs, credit codes, card numbers) are kept, at most
`bound` of them: a refusal never writes raw client input into the audit log. Runs only for
refused requests, never on the path of an admitted one.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from graphql import (
    GraphQLInputObjectType,
    GraphQLInputType,
    ListValueNode,
    ObjectValueNode,
    OperationDefinitionNode,
    StringValueNode,
    ValueNode,
    VariableNode,
    get_named_type,
)

from connectors.identifiers import InvalidIdentifier, validate_subject
from schema.document import PreparedDocument
from schema.fields import Validator, entry, input_identifier

__all__ = ["named_subjects"]

# Deeper than any input type of the schema nests: a hostile variable cannot exhaust the stack.
_MAX_DEPTH = 16


def named_subjects(
    prepared: PreparedDocument, variables: Mapping[str, Any] | None, bound: int
) -> tuple[str, ...]:
    """The well-formed subject identifiers the document names, without repeats, at most `bound`."""
    found: dict[str, None] = {}
    given = {**_defaults(prepared), **(variables or {})}
    for value, check in _identifier_values(prepared, given):
        if len(found) >= bound:
            break
        try:
            found[validate_subject(check(value))] = None
        except InvalidIdentifier:
            continue
    return tuple(found)


def _defaults(prepared: PreparedDocument) -> dict[str, Any]:
    """The default values of the document's variables (value nodes), by variable name."""
    definitions = prepared.document.definitions if prepared.document else ()
    return {
        d.variable.name.value: d.default_value
        for op in definitions
        if isinstance(op, OperationDefinitionNode)
        for d in op.variable_definitions or ()
        if d.default_value is not None
    }


def _identifier_values(
    prepared: PreparedDocument, variables: Mapping[str, Any]
) -> Iterator[tuple[object, Validator]]:
    for use in prepared.uses:
        if use.definition is None or not use.node.arguments:
            continue
        found = entry(use.parent, use.name)
        declared = found.arguments if found is not None else {}
        for node in use.node.arguments:
            name = node.name.value
            definition = use.definition.args.get(name)
            if definition is None:
                continue
            argument = declared.get(name)
            check = argument.check if argument is not None else None
            yield from _walk(node.value, definition.type, check, variables)


def _walk(
    node: ValueNode | object,
    type_: GraphQLInputType,
    check: Validator | None,
    variables: Mapping[str, Any],
    depth: int = 0,
) -> Iterator[tuple[object, Validator]]:
    """`node`: a value node of the document, or a plain value (from a variable)."""
    if depth > _MAX_DEPTH:
        return
    if isinstance(node, VariableNode):
        node = variables.get(node.name.value)
    if isinstance(node, ListValueNode):
        node = list(node.values)
    if isinstance(node, list):
        for item in node:
            yield from _walk(item, type_, check, variables, depth + 1)
        return
    named = get_named_type(type_)
    if isinstance(named, GraphQLInputObjectType):
        yield from _walk_object(node, named, variables, depth + 1)
    elif check is not None:
        value = node.value if isinstance(node, StringValueNode) else node
        if isinstance(value, (str, dict)):  # a dict: an `_entities` representation
            yield value, check


def _walk_object(
    node: object, type_: GraphQLInputObjectType, variables: Mapping[str, Any], depth: int
) -> Iterator[tuple[object, Validator]]:
    if isinstance(node, ObjectValueNode):
        items: list[tuple[str, object]] = [(f.name.value, f.value) for f in node.fields]
    elif isinstance(node, dict):
        items = list(node.items())
    else:
        return
    for name, value in items:
        field = type_.fields.get(name) if isinstance(name, str) else None
        if field is not None:
            check = input_identifier(type_.name, name)
            yield from _walk(value, field.type, check, variables, depth)
