"""The policy table covers the whole schema, and nothing it names is stale."""

from __future__ import annotations

import subprocess
import sys

from graphql import GraphQLID, GraphQLObjectType, get_named_type

from schema import build_schema
from schema.arguments import IDENTIFIER_ARGUMENTS
from schema.policy import ARGUMENT_SCOPES, FIELD_SCOPES

SCHEMA = build_schema()._schema


def _object_fields() -> set[tuple[str, str]]:
    return {
        (t.name, f)
        for t in SCHEMA.type_map.values()
        if isinstance(t, GraphQLObjectType) and not t.name.startswith("__")
        for f in t.fields
    }


def _arguments() -> set[tuple[str, str, str]]:
    return {
        (t.name, f, a)
        for t in SCHEMA.type_map.values()
        if isinstance(t, GraphQLObjectType) and not t.name.startswith("__")
        for f, field in t.fields.items()
        for a in field.args
    }


def test_every_field_of_the_schema_has_a_policy_entry() -> None:
    assert sorted(_object_fields() - FIELD_SCOPES.keys()) == []


def test_every_argument_of_the_schema_has_a_policy_entry() -> None:
    assert sorted(_arguments() - ARGUMENT_SCOPES.keys()) == []


def test_the_policy_names_no_field_the_schema_does_not_have() -> None:
    assert sorted(FIELD_SCOPES.keys() - _object_fields()) == []
    assert sorted(ARGUMENT_SCOPES.keys() - _arguments()) == []


def test_every_id_argument_of_the_query_root_is_validated_before_execution() -> None:
    ids = {
        ("Query", f, a)
        for f, field in SCHEMA.query_type.fields.items()  # type: ignore[union-attr]
        for a, arg in field.args.items()
        if get_named_type(arg.type) is GraphQLID
    }
    assert sorted(ids - IDENTIFIER_ARGUMENTS.keys()) == []


def test_schema_export_prints_the_contract_names() -> None:
    sdl = subprocess.run(
        [sys.executable, "-m", "hub", "schema", "export"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    for name in (
        "permit(number: ID!): WorkPermit",
        "permits(numbers: [ID!]!): [WorkPermit]!",
        "enrollment(ssn: ID!): Enrollment",
        "cards(ssn: ID!): [SocialSecurityCard!]\n",  # nullable: a refused SSN nulls only it
        "enum PermitStatus",
        "enum PermitMedium",
        "enum CardKind",
        "enum CardStatus",
        "isValid(on: Date",
        "notificationLetterNumber: String",
        "applyForCard(input: CardApplicationInput!): CardApplicationPayload!",
        "applyForCards(input: BatchCardApplicationInput!): BatchCardApplicationPayload!",
        "updateCardStatus(input: UpdateCardStatusInput!): UpdateCardStatusPayload!",
    ):
        assert name in sdl, name


def test_every_id_field_of_an_input_object_is_validated_before_execution() -> None:
    from graphql import GraphQLInputObjectType

    from schema.arguments import IDENTIFIER_INPUT_FIELDS

    ids = {
        (t.name, f)
        for t in SCHEMA.type_map.values()
        if isinstance(t, GraphQLInputObjectType)
        for f, field in t.fields.items()
        if get_named_type(field.type) is GraphQLID
    }
    # The audit filter's subject reaches no source system; its resolver validates it.
    resolver_checked = {("AccessLogFilter", "subject")}
    # A batch item's SSN fails only its own item: the card workflow validates it per item.
    workflow_checked = {("BatchCardApplicationItem", "ssn")}
    unchecked = ids - IDENTIFIER_INPUT_FIELDS.keys() - resolver_checked - workflow_checked
    assert sorted(unchecked) == []
    assert workflow_checked <= ids and not workflow_checked & IDENTIFIER_INPUT_FIELDS.keys()
    assert sorted(IDENTIFIER_INPUT_FIELDS.keys() - ids) == []


def test_every_id_argument_of_the_mutation_root_is_validated_before_execution() -> None:
    assert SCHEMA.mutation_type is not None
    ids = {
        ("Mutation", f, a)
        for f, field in SCHEMA.mutation_type.fields.items()
        for a, arg in field.args.items()
        if get_named_type(arg.type) is GraphQLID
    }
    assert sorted(ids - IDENTIFIER_ARGUMENTS.keys()) == []


def test_schema_export_federation_prints_the_subgraph_and_the_plain_one_the_contract() -> None:
    def export(*flags: str) -> str:
        return subprocess.run(
            [sys.executable, "-m", "hub", "schema", "export", *flags],
            check=True, capture_output=True, text=True,
        ).stdout

    public, subgraph = export(), export("--federation")
    assert 'type WorkPermit @key(fields: "number")' in subgraph
    assert 'type Enrollment @key(fields: "ssn")' in subgraph
    assert "@link(url: \"https://specs.apollo.dev/federation/v2" in subgraph
    # The contract agencies know is unchanged by federation: no key, no _entities, no _Any.
    assert "@key" not in public and "_entities" not in public and "_Any" not in public
    assert "type Query {\n  \"\"\"A work permit by number" in public
