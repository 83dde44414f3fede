"""Identifier arguments are checked before execution: a bad one never reaches a source system.

Every `ID` argument of the schema has its validator in its field's entry of `schema.fields`
(`Argument.check`), and every `ID` field of an input object in `INPUT_IDENTIFIERS` (tests hold
both complete). SSNs and agency regions must also name a region that one of the hub's agencies
serves.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

from graphql import (
    GraphQLError,
    GraphQLInputObjectType,
    GraphQLSchema,
    VariableDefinitionNode,
    get_named_type,
)
from graphql.execution.values import VariableValues, get_argument_values, get_variable_values

from connectors.identifiers import InvalidIdentifier, region_of_ssn, validate_region, validate_ssn
from schema.document import FieldUse
from schema.entities import representation_type, validate_representation
from schema.errors import BadUserInput
from schema.fields import FIELDS, INPUT_IDENTIFIERS, Validator, entry, input_identifier

__all__ = [
    "IDENTIFIER_ARGUMENTS",
    "IDENTIFIER_INPUT_FIELDS",
    "check_arguments",
    "coerce_variables",
]

MAX_NAMED_ITEMS = 20  # bad items of a list argument named in `extensions.invalid`
MAX_SHOWN_LENGTH = 40  # the longest item echoed back; an identifier is at most 18 characters

# Views of the registry: (type, field, argument) and (input type, field) -> validator.
IDENTIFIER_ARGUMENTS: Mapping[tuple[str, str, str], Validator] = MappingProxyType(
    {
        (*key.split(".", 1), name): argument.check  # type: ignore[misc]
        for key, f in FIELDS.items()
        for name, argument in f.arguments.items()
        if argument.check is not None
    }
)
IDENTIFIER_INPUT_FIELDS: Mapping[tuple[str, str], Validator] = MappingProxyType(
    {tuple(key.split(".", 1)): check for key, check in INPUT_IDENTIFIERS.items()}  # type: ignore[misc]
)


def coerce_variables(
    schema: GraphQLSchema,
    definitions: Iterable[VariableDefinitionNode] | None,
    raw: Mapping[str, Any],
) -> VariableValues:
    result = get_variable_values(schema, list(definitions or ()), dict(raw))
    if isinstance(result, list):
        raise BadUserInput(result[0].message)
    return result


def _values(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def check_arguments(
    uses: Iterable[FieldUse],
    variables: VariableValues,
    *,
    served_regions: frozenset[str],
    max_batch: int,
) -> tuple[str, ...]:
    """Raise BadUserInput for the first malformed identifier, over-long batch or bad combination.

    Returns the permit numbers the root fields `permit`, `permits` and `_entities` name, without
    repeats.
    """
    named: dict[str, None] = {}
    for use in uses:
        if use.definition is None or not use.definition.args:
            continue
        try:
            args = get_argument_values(use.definition, use.node, variables)
        except GraphQLError as exc:
            raise BadUserInput(exc.message) from None
        found = entry(use.parent, use.name)
        declared = found.arguments if found is not None else {}
        for arg_name, value in args.items():
            if isinstance(value, dict):
                input_type = get_named_type(use.definition.args[arg_name].type)
                _check_input(input_type, value, f"{use.name}({arg_name})", served_regions)
            argument = declared.get(arg_name)
            if argument is None or argument.check is None or value is None:
                continue
            values = _values(value)
            if len(values) > max_batch:
                raise BadUserInput(f"{use.path}: at most {max_batch} {arg_name} per request")
            where = f"{use.name}({arg_name})"
            if isinstance(value, list):
                _check_items(argument.check, values, where, served_regions)
            else:
                _check_one(argument.check, value, where, served_regions)
            if argument.names_permits:
                named.update(dict.fromkeys(_permit_numbers(argument.check, values)))
        if found is not None and found.one_of and _given(args, found.one_of) != 1:
            raise BadUserInput(f"{use.path}: give exactly one of {' and '.join(found.one_of)}")
    return tuple(named)


def _permit_numbers(check: Validator, values: list[Any]) -> list[str]:
    """The permit numbers of checked values: the values, or the `WorkPermit` representations'
    numbers (`_entities`, read first like `permits(numbers)`'s)."""
    if check is not validate_representation:
        return values
    return [check(v) for v in values if representation_type(v) == "WorkPermit"]


def _given(args: Mapping[str, Any], names: Iterable[str]) -> int:
    return sum(args.get(name) is not None for name in names)


def _check_one(validator: Validator, value: Any, where: str, served: frozenset[str]) -> None:
    try:
        identifier = validator(value)
    except InvalidIdentifier as exc:
        raise BadUserInput(f"{where}: {exc}") from None
    ssn = validator is validate_ssn or (
        validator is validate_representation and representation_type(value) == "Enrollment"
    )
    if ssn and region_of_ssn(identifier) not in served:
        raise BadUserInput(f"{where}: no social-security agency serves this region")


def _check_items(
    validator: Validator, values: list[Any], where: str, served: frozenset[str]
) -> None:
    """Every item of a list argument, all of them before refusing: the error names each bad
    one by index (the first `MAX_NAMED_ITEMS` in `extensions.invalid`), so a client can find
    the one typo in a page of 500. The whole request is still refused, before any source
    system is called."""
    invalid: list[dict[str, Any]] = []
    for index, item in enumerate(values):
        try:
            _check_one(validator, item, where, served)
        except BadUserInput as exc:
            reason = exc.message.removeprefix(f"{where}: ")
            invalid.append({"index": index, "value": _shown(item), "reason": reason})
    if not invalid:
        return
    first = invalid[0]
    more = f" (and {len(invalid) - 1} more invalid items)" if len(invalid) > 1 else ""
    raise BadUserInput(
        f"{where}: item {first['index']} ({first['value']}): {first['reason']}{more}",
        invalid=invalid[:MAX_NAMED_ITEMS],
        invalidCount=len(invalid),
    )


def _shown(value: Any) -> str:
    """The client's own item, echoed in its own error only (never logged): bounded, and
    only if it is short printable text."""
    if isinstance(value, str) and len(value) <= MAX_SHOWN_LENGTH and value.isprintable():
        return value
    return "(value not shown)"


def _check_input(
    input_type: object, value: dict[str, Any], where: str, served: frozenset[str]
) -> None:
    """The identifier fields of one input object value (nested input objects included)."""
    if not isinstance(input_type, GraphQLInputObjectType):
        return
    for name, item in value.items():
        if isinstance(item, dict):
            nested = get_named_type(input_type.fields[name].type)
            _check_input(nested, item, f"{where}.{name}", served)
        elif isinstance(item, list):  # a list of input objects: each element is checked
            nested = get_named_type(input_type.fields[name].type)
            for position, element in enumerate(item):
                if isinstance(element, dict):
                    _check_input(nested, element, f"{where}.{name}[{position}]", served)
        validator = input_identifier(input_type.name, name)
        if validator is None or item is None:
            continue
        try:
            validator(item)
        except InvalidIdentifier as exc:
            raise BadUserInput(f"{where}.{name}: {exc}") from None
        if validator is validate_region and item not in served:
            raise BadUserInput(f"{where}.{name}: no social-security agency serves this region")
        if validator is validate_ssn and region_of_ssn(item) not in served:
            raise BadUserInput(f"{where}.{name}: no social-security agency serves this region")
