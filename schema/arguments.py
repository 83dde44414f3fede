"""Identifier arguments are checked before execution: a bad one never reaches a source system.

Every `ID` argument of the schema is listed in `IDENTIFIER_ARGUMENTS`, and every `ID` field of
an input object in `IDENTIFIER_INPUT_FIELDS` (tests hold both tables complete), with the
validator from `connectors.identifiers` that it must pass. SSNs and agency regions must also name a
region that one of the hub's agencies serves.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from graphql import (
    GraphQLError,
    GraphQLInputObjectType,
    GraphQLSchema,
    VariableDefinitionNode,
    get_named_type,
)
from graphql.execution.values import VariableValues, get_argument_values, get_variable_values

from connectors.identifiers import (
    InvalidIdentifier,
    region_of_ssn,
    validate_card_number,
    validate_credit_code,
    validate_permit_number,
    validate_region,
    validate_ssn,
    validate_subject,
)
from schema.document import FieldUse
from schema.errors import BadUserInput

__all__ = [
    "IDENTIFIER_ARGUMENTS",
    "IDENTIFIER_INPUT_FIELDS",
    "check_arguments",
    "coerce_variables",
]

Validator = Callable[[object], str]

IDENTIFIER_ARGUMENTS: dict[tuple[str, str, str], Validator] = {
    ("Query", "permit", "number"): validate_permit_number,
    ("Query", "permits", "numbers"): validate_permit_number,
    ("Query", "foreigner", "permitNumber"): validate_permit_number,
    ("Query", "foreigner", "ssn"): validate_ssn,
    ("Query", "enrollment", "ssn"): validate_ssn,
    ("Query", "cards", "ssn"): validate_ssn,
    ("Query", "subjectAccessLog", "subject"): validate_subject,
    ("Subscription", "permitStatusChanged", "numbers"): validate_permit_number,
}
# (input object type, field) -> validator, for identifiers inside input objects.
IDENTIFIER_INPUT_FIELDS: dict[tuple[str, str], Validator] = {
    ("RegisterEnrollmentInput", "permitNumber"): validate_permit_number,
    ("RegisterEnrollmentInput", "region"): validate_region,
    ("RegisterEnrollmentInput", "employerCreditCode"): validate_credit_code,
    ("CardApplicationInput", "ssn"): validate_ssn,
    ("BatchCardApplicationInput", "employerCreditCode"): validate_credit_code,
    ("UpdateCardStatusInput", "cardNumber"): validate_card_number,
    # Not ("BatchCardApplicationItem", "ssn"): a malformed SSN fails its own item, not the
    # batch; `workflows.cards` validates it before anything is sent upstream.
}
SSN_ARGUMENTS = {key for key, check in IDENTIFIER_ARGUMENTS.items() if check is validate_ssn}
# The arguments that name the permits a query reads first (the request path reads their cache
# entries with its shared checks).
PERMIT_ARGUMENTS = {("Query", "permit", "number"), ("Query", "permits", "numbers")}


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

    Returns the permit numbers the root fields `permit` and `permits` name, without repeats.
    """
    named: dict[str, None] = {}
    for use in uses:
        if use.definition is None or not use.definition.args:
            continue
        try:
            args = get_argument_values(use.definition, use.node, variables)
        except GraphQLError as exc:
            raise BadUserInput(exc.message) from None
        for arg_name, value in args.items():
            if isinstance(value, dict):
                input_type = get_named_type(use.definition.args[arg_name].type)
                _check_input(input_type, value, f"{use.name}({arg_name})", served_regions)
            validator = IDENTIFIER_ARGUMENTS.get((use.parent, use.name, arg_name))
            if validator is None or value is None:
                continue
            values = _values(value)
            if len(values) > max_batch:
                raise BadUserInput(f"{use.path}: at most {max_batch} {arg_name} per request")
            key = (use.parent, use.name, arg_name)
            for item in values:
                _check_one(validator, item, key, served_regions)
            if key in PERMIT_ARGUMENTS:
                named.update(dict.fromkeys(values))
        if (use.parent, use.name) == ("Query", "foreigner") and (
            (args.get("permitNumber") is None) == (args.get("ssn") is None)
        ):
            raise BadUserInput(f"{use.path}: give exactly one of permitNumber and ssn")
    return tuple(named)


def _check_one(
    validator: Validator, value: Any, key: tuple[str, str, str], served: frozenset[str]
) -> None:
    try:
        validator(value)
    except InvalidIdentifier as exc:
        raise BadUserInput(f"{key[1]}({key[2]}): {exc}") from None
    if key in SSN_ARGUMENTS and region_of_ssn(value) not in served:
        raise BadUserInput(f"{key[1]}({key[2]}): no social-security agency serves this region")


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
        validator = IDENTIFIER_INPUT_FIELDS.get((input_type.name, name))
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
