"""The hub as an Apollo Federation v2 subgraph: its entities and what `_entities` may be asked.

    validate_representation({"__typename": "WorkPermit", "number": "4201..."}) -> "4201..."
    entity_types(field_node, document) -> frozenset({"WorkPermit"})

A gateway asks `_entities(representations: [...])` for entities of other subgraphs' answers. Each
representation names one row by its key, exactly as a root field's identifier argument does, so
it is held to the same checks: the registry (`schema.fields`, `Query._entities`) validates every
representation like an identifier (a bad check character is BAD_USER_INPUT before anything
runs), counts them against the batch bounds and names them as the request's subjects, and
`resolve_reference` (`schema.types`) refuses a row outside the caller's jurisdiction before it
is loaded, as `Query.permit` and `Query.enrollment` do.

An entity type stands for the root field that reads it (`ENTITY_ROOTS`): a representation of a
type is only answered when the document selects that type under `_entities` and the client's
scopes include that root field's, and a purpose covers `_entities` on a type when it covers
that root field (`schema.purposes`). `Foreigner` is no entity: no key reads a person alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Final

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    SelectionSetNode,
)
from graphql.execution.values import VariableValues, get_argument_values

from connectors.identifiers import InvalidIdentifier, validate_permit_number, validate_ssn
from schema.errors import BadUserInput

if TYPE_CHECKING:
    from schema.document import PreparedDocument

__all__ = [
    "ENTITIES", "ENTITY_ROOTS", "check_entities", "entity_types", "representation_type",
    "validate_representation",
]

ENTITIES: Final = "_entities"
# Entity type -> (its key field, the root field that reads it by that key).
ENTITY_ROOTS: Final[Mapping[str, tuple[str, str]]] = {
    "WorkPermit": ("number", "permit"),
    "Enrollment": ("ssn", "enrollment"),
}
_CHECKS = {"WorkPermit": validate_permit_number, "Enrollment": validate_ssn}


def validate_representation(value: object) -> str:
    """The identifier a representation names (validated), or InvalidIdentifier."""
    if not isinstance(value, Mapping):
        raise InvalidIdentifier("representation", "", "expected an object with __typename")
    type_name = value.get("__typename")
    if not isinstance(type_name, str) or type_name not in ENTITY_ROOTS:
        raise InvalidIdentifier(
            "representation", "", f"__typename must be one of {', '.join(ENTITY_ROOTS)}"
        )
    key, _ = ENTITY_ROOTS[type_name]
    if set(value) != {"__typename", key}:
        raise InvalidIdentifier("representation", "", f"a {type_name} is given by {key} alone")
    return _CHECKS[type_name](value[key])


def representation_type(value: object) -> str | None:
    type_name = value.get("__typename") if isinstance(value, Mapping) else None
    return type_name if isinstance(type_name, str) else None


def entity_types(node: FieldNode, document: DocumentNode) -> frozenset[str]:
    """The types the selection of an `_entities` field names (inline fragments and spreads)."""
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    found: set[str] = set()
    seen: set[str] = set()

    def walk(selections: SelectionSetNode | None) -> None:
        for selection in selections.selections if selections else ():
            if isinstance(selection, InlineFragmentNode):
                if selection.type_condition is not None:
                    found.add(selection.type_condition.name.value)
                walk(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                if name not in seen and name in fragments:
                    seen.add(name)
                    found.add(fragments[name].type_condition.name.value)
                    walk(fragments[name].selection_set)

    walk(node.selection_set)
    return frozenset(found)


def check_entities(
    prepared: PreparedDocument, variables: VariableValues, scopes: frozenset[str]
) -> tuple[str, ...]:
    """Before execution: BadUserInput for a representation of a type the `_entities` selection
    does not name (it would be read past the purpose check); the paths of `_entities` fields
    whose entity types need a root scope the client lacks (the field policy refuses those)."""
    from schema.fields import entry  # the registry imports this module's validator

    denied: list[str] = []
    if prepared.document is None:
        return ()
    for use in prepared.uses:
        if use.parent != "Query" or use.name != ENTITIES or use.definition is None:
            continue
        try:
            args = get_argument_values(use.definition, use.node, variables)
        except GraphQLError as exc:
            raise BadUserInput(exc.message) from None
        types = entity_types(use.node, prepared.document)
        for position, value in enumerate(args.get("representations") or ()):
            type_name = representation_type(value)
            if type_name not in types:
                raise BadUserInput(
                    f"{use.path}(representations)[{position}]: the selection names no "
                    f"... on {type_name}"
                )
        for type_name in sorted(types & ENTITY_ROOTS.keys()):
            root = entry("Query", ENTITY_ROOTS[type_name][1])
            if root is None or not root.opened_by(scopes):
                denied.append(f"{use.path}<{type_name}>")
    return tuple(dict.fromkeys(denied))
