"""Field policy: the one table mapping every field and argument to the scope it needs.

Deny by default: a field or argument missing from the table is refused for everybody (and a
test fails if any field of the schema has no entry). The check runs over the whole document
(every operation, fragment, inline fragment and alias, including fields under @skip/@include,
whatever the variables) before any resolver runs, and its result is cached per
(document, scope set). `INHERIT` marks small value types (a region, a status change, a
mutation's payload) that are only reachable through a field that is itself checked.

Input objects have no entries of their own: an input object's fields are covered by the scope
of the argument that carries it (`Mutation.registerEnrollment(input)`), and their identifiers
are validated by `schema.arguments` like any identifier argument.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from graphql import (
    DocumentNode,
    FieldDefinitionNode,
    GraphQLSchema,
    ObjectTypeDefinitionNode,
    build_ast_schema,
    parse,
    print_schema,
)
from graphql.language import NamedTypeNode, TypeNode

from schema.document import FieldUse, PreparedDocument

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

INHERIT: Final = "(inherit)"
INTROSPECTION_FIELDS = frozenset({"__schema", "__type"})


def _grant(scope: str, type_name: str, fields: str) -> dict[tuple[str, str], str]:
    return {(type_name, f): scope for f in fields.split()}


FIELD_SCOPES: dict[tuple[str, str], str] = {
    **_grant("permit:validity", "Query", "permit permits verifyPermitQr"),
    **_grant(INHERIT, "QrVerification", "valid reason permit"),
    **_grant("enrollment:write", "Mutation", "registerEnrollment"),
    **_grant(INHERIT, "RegisterEnrollmentPayload", "enrollment created"),
    **_grant("card:write", "Mutation", "applyForCard applyForCards updateCardStatus"),
    **_grant(INHERIT, "CardApplicationPayload", "card created"),
    **_grant(INHERIT, "BatchCardApplicationPayload", "results total created replayed failed"),
    **_grant(INHERIT, "CardApplicationResult", "index ssn card created error"),
    **_grant(INHERIT, "CardApplicationError", "code message"),
    **_grant(INHERIT, "UpdateCardStatusPayload", "card"),
    **_grant("events:subscribe", "Subscription", "permitStatusChanged"),
    **_grant("person:identity", "Query", "foreigner"),
    **_grant("enrollment:read", "Query", "enrollment"),
    **_grant("card:status", "Query", "cards"),
    **_grant("audit:read", "Query", "accessLog"),
    **_grant("audit:subject", "Query", "subjectAccessLog"),
    **_grant(INHERIT, "AccessEventConnection", "edges pageInfo"),
    **_grant(INHERIT, "AccessEventEdge", "cursor node"),
    **_grant(INHERIT, "PageInfo", "hasNextPage endCursor"),
    **_grant(
        INHERIT,
        "AccessEvent",
        "id seq time kind clientId agency purpose operation documentHash fields subjects denied "
        "outcome errorCodes traceId clientAddress responseSha256 prevHash hash",
    ),
    **_grant("permit:validity", "WorkPermit", "number status validFrom validUntil isValid medium"),
    **_grant("permit:holder", "WorkPermit", "holder"),
    **_grant(
        "permit:detail",
        "WorkPermit",
        "employer category position workLocation notificationLetterNumber history",
    ),
    **_grant("enrollment:read", "WorkPermit", "enrollment"),
    **_grant("card:status", "WorkPermit", "cards"),
    **_grant("permit:holder", "Foreigner", "id name nationality"),
    **_grant("person:identity", "Foreigner", "passportNumber dateOfBirth gender"),
    **_grant("permit:validity", "Foreigner", "permits"),
    **_grant("enrollment:read", "Foreigner", "enrollments"),
    **_grant(
        "enrollment:read",
        "Enrollment",
        "ssn permitNumber region status enrolledOn employerCreditCode permit cards",
    ),
    **_grant("card:status", "SocialSecurityCard", "kind status issuedOn region"),
    **_grant("card:read", "SocialSecurityCard", "cardNumber ssn channel history"),
    **_grant("permit:detail", "Employer", "creditCode name region"),
    **_grant(INHERIT, "Region", "code name"),
    **_grant(INHERIT, "PermitEvent", "permitNumber kind at status detail"),
    **_grant(INHERIT, "CardStatusChange", "status at reason"),
}

ARGUMENT_SCOPES: dict[tuple[str, str, str], str] = {
    ("Query", "permit", "number"): "permit:validity",
    ("Query", "permits", "numbers"): "permit:validity",
    ("Query", "verifyPermitQr", "payload"): "permit:validity",
    ("Mutation", "registerEnrollment", "input"): "enrollment:write",
    ("Mutation", "applyForCard", "input"): "card:write",
    ("Mutation", "applyForCards", "input"): "card:write",
    ("Mutation", "updateCardStatus", "input"): "card:write",
    ("Query", "foreigner", "permitNumber"): "person:identity",
    ("Query", "foreigner", "ssn"): "person:identity",
    ("Query", "enrollment", "ssn"): "enrollment:read",
    ("Query", "cards", "ssn"): "card:status",
    ("Subscription", "permitStatusChanged", "numbers"): "events:subscribe",
    ("WorkPermit", "isValid", "on"): "permit:validity",
    ("Query", "accessLog", "filter"): "audit:read",
    ("Query", "accessLog", "first"): "audit:read",
    ("Query", "accessLog", "after"): "audit:read",
    ("Query", "subjectAccessLog", "subject"): "audit:subject",
    ("Query", "subjectAccessLog", "first"): "audit:subject",
    ("Query", "subjectAccessLog", "after"): "audit:subject",
}


def allowed(type_name: str, field: str, scopes: frozenset[str]) -> bool:
    need = FIELD_SCOPES.get((type_name, field))
    return need is not None and (need == INHERIT or need in scopes)


def arguments_allowed(
    type_name: str, field: str, arguments: Iterable[str], scopes: frozenset[str]
) -> bool:
    """Every argument named has a policy entry within `scopes` (deny by default)."""
    for argument in arguments:
        need = ARGUMENT_SCOPES.get((type_name, field, argument))
        if need is None or (need != INHERIT and need not in scopes):
            return False
    return True


@dataclass(frozen=True, slots=True)
class PolicyDecision:
    denied: tuple[str, ...]  # response paths of the fields outside the caller's scopes
    introspection: bool  # the document asks for __schema or __type


def decide(uses: Iterable[FieldUse], scopes: frozenset[str]) -> PolicyDecision:
    denied: list[str] = []
    introspection = False
    for use in uses:
        if use.name == "__typename":
            continue
        if use.name in INTROSPECTION_FIELDS or use.parent.startswith("__"):
            introspection = True
            continue
        arguments = (a.name.value for a in use.node.arguments or ())
        if not (
            allowed(use.parent, use.name, scopes)
            and arguments_allowed(use.parent, use.name, arguments, scopes)
        ):
            denied.append(use.path)
    return PolicyDecision(tuple(dict.fromkeys(denied)), introspection)


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
    """The schema as a client with `scopes` may see it (for introspection); None if empty."""
    document = parse(print_schema(schema))
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


def _prune(schema: GraphQLSchema) -> GraphQLSchema:
    """Built from its roots alone, a schema holds only reachable types for introspection."""
    return GraphQLSchema(
        query=schema.query_type,
        mutation=schema.mutation_type,
        subscription=schema.subscription_type,
        directives=schema.directives,
    )
