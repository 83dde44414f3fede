"""Field policy: every field and argument against the scope the field registry gives it.

Deny by default: a field or argument missing from `schema.fields.FIELDS` is refused for
everybody (and a test fails if any field of the schema has no entry). The check runs over the
whole document (every operation, fragment, inline fragment and alias, including fields under
@skip/@include, whatever the variables) before any resolver runs, and its result is cached per
(document, scope set). `INHERIT` marks small value types (a region, a status change, a
mutation's payload) that are only reachable through a field that is itself checked.

Input objects have no entries of their own: an input object's fields are covered by the scope
of the argument that carries it (`Mutation.registerEnrollment(input)`), and their identifiers
are validated by `schema.arguments` like any identifier argument.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from graphql import (
    DefinitionNode,
    DirectiveDefinitionNode,
    DocumentNode,
    FieldDefinitionNode,
    GraphQLSchema,
    ObjectTypeDefinitionNode,
    TypeDefinitionNode,
    build_ast_schema,
    parse,
    print_schema,
)
from graphql.language import NamedTypeNode, TypeNode

from schema.document import FieldUse, PreparedDocument
from schema.fields import FIELDS, INHERIT, entry

__all__ = [
    "ARGUMENT_SCOPES",
    "FIELD_SCOPES",
    "INHERIT",
    "INTROSPECTION_FIELDS",
    "PolicyCache",
    "PolicyDecision",
    "allowed",
    "arguments_allowed",
    "filtered_schema",
]

INTROSPECTION_FIELDS = frozenset({"__schema", "__type"})

# Views of the registry by scope, for readers that ask "which scope does this need?".
FIELD_SCOPES: Mapping[tuple[str, str], str] = MappingProxyType(
    {tuple(key.split(".", 1)): f.scope for key, f in FIELDS.items()}  # type: ignore[misc]
)
ARGUMENT_SCOPES: Mapping[tuple[str, str, str], str] = MappingProxyType(
    {
        (*key.split(".", 1), name): argument.scope  # type: ignore[misc]
        for key, f in FIELDS.items()
        for name, argument in f.arguments.items()
    }
)


def allowed(type_name: str, field: str, scopes: frozenset[str]) -> bool:
    found = entry(type_name, field)
    return found is not None and found.opened_by(scopes)


def arguments_allowed(
    type_name: str, field: str, arguments: Iterable[str], scopes: frozenset[str]
) -> bool:
    """Every argument named has a registry entry within `scopes` (deny by default)."""
    found = entry(type_name, field)
    declared = found.arguments if found is not None else {}
    # A person's scope opens the arguments of the fields it opens (their own rows only).
    opened = found is not None and found.person is not None and found.person in scopes
    for name in arguments:
        argument = declared.get(name)
        if argument is None or not (
            opened or argument.scope == INHERIT or argument.scope in scopes
        ):
            return False
    return True


@dataclass(frozen=True, slots=True)
class PolicyDecision:
    denied: tuple[str, ...]  # response paths of the fields outside the caller's scopes
    introspection: bool  # the document asks for __schema or __type
    # It selects a field bound to the rows of the caller's jurisdiction (`schema.rows`):
    # False lets a validity check run with no row check at all.
    bound: bool = False


def decide(uses: Iterable[FieldUse], scopes: frozenset[str]) -> PolicyDecision:
    denied: list[str] = []
    introspection = False
    bound = False
    for use in uses:
        if use.name == "__typename":
            continue
        if use.name in INTROSPECTION_FIELDS or use.parent.startswith("__"):
            introspection = True
            continue
        found = entry(use.parent, use.name)
        bound = bound or (found is not None and found.binding == "region-of-row")
        arguments = (a.name.value for a in use.node.arguments or ())
        if not (
            allowed(use.parent, use.name, scopes)
            and arguments_allowed(use.parent, use.name, arguments, scopes)
        ):
            denied.append(use.path)
    return PolicyDecision(tuple(dict.fromkeys(denied)), introspection, bound)


class PolicyCache:
    """Decisions per (document, scope set): the table walk runs once per pair."""

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._items: OrderedDict[tuple[str, frozenset[str]], PolicyDecision] = OrderedDict()

    def decide(self, prepared: PreparedDocument, scopes: frozenset[str]) -> PolicyDecision:
        key = (prepared.text_hash, scopes)
        decision = self._items.get(key)
        if decision is None:
            decision = decide(prepared.uses, scopes)
            self._items[key] = decision
            if len(self._items) > self._size:
                self._items.popitem(last=False)
        return decision


def _named(node: TypeNode) -> str:
    while not isinstance(node, NamedTypeNode):
        node = node.type  # type: ignore[attr-defined]
    return node.name.value


def _keep_field(type_name: str, field: FieldDefinitionNode, scopes: frozenset[str]) -> bool:
    name = field.name.value
    arguments = (a.name.value for a in field.arguments or ())
    return allowed(type_name, name, scopes) and arguments_allowed(
        type_name, name, arguments, scopes
    )


def filtered_schema(schema: GraphQLSchema, scopes: frozenset[str]) -> GraphQLSchema | None:
    """The schema as a client with `scopes` may see it (for introspection); None if empty.

    Without federation's additions (`_service`, `_entities` and their types): introspection
    shows the contract; a gateway reads the subgraph from `_service { sdl }`."""
    printed = parse(print_schema(schema))
    document = DocumentNode(definitions=tuple(
        _without_federation(d) for d in printed.definitions
        if not _federation(d)
    ))
    objects = {
        d.name.value: d for d in document.definitions if isinstance(d, ObjectTypeDefinitionNode)
    }
    kept = {
        name: [f for f in d.fields or () if _keep_field(name, f, scopes)]
        for name, d in objects.items()
    }
    changed = True
    while changed:  # drop fields whose type lost all its fields, until nothing changes
        empty = {name for name, fields in kept.items() if not fields}
        changed = False
        for name, fields in kept.items():
            remaining = [f for f in fields if _named(f.type) not in empty]
            changed = changed or len(remaining) != len(fields)
            kept[name] = remaining
    if not kept.get("Query"):
        return None
    definitions = [
        d.__class__(**{**{k: getattr(d, k) for k in d.keys}, "fields": tuple(kept[d.name.value])})
        if isinstance(d, ObjectTypeDefinitionNode)
        else d
        for d in document.definitions
        if not (isinstance(d, ObjectTypeDefinitionNode) and not kept[d.name.value])
    ]
    return _prune(build_ast_schema(DocumentNode(definitions=tuple(definitions))))


def _federation(definition: DefinitionNode) -> bool:
    """A type or directive federation adds (`_Any`, `_Entity`, `link__Import`, `@key`, ...)."""
    if isinstance(definition, DirectiveDefinitionNode):
        return definition.name.value in ("key", "link")
    return isinstance(definition, TypeDefinitionNode) and definition.name.value.startswith(
        ("_", "link__")
    )


def _without_federation(definition: DefinitionNode) -> DefinitionNode:
    if not isinstance(definition, ObjectTypeDefinitionNode):
        return definition
    fields = tuple(f for f in definition.fields or () if not f.name.value.startswith("_"))
    return definition.__class__(
        **{**{k: getattr(definition, k) for k in definition.keys}, "fields": fields}
    )


def _prune(schema: GraphQLSchema) -> GraphQLSchema:
    """Built from its roots alone, a schema holds only reachable types for introspection."""
    return GraphQLSchema(
        query=schema.query_type,
        mutation=schema.mutation_type,
        subscription=schema.subscription_type,
        directives=schema.directives,
    )
