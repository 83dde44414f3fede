"""The field registry's decisions name what the schema has.

Coverage (every field and argument of the schema has an entry, and no entry is stale) is held by
`test_policy_table.py` through the registry's scope views; these tests hold the rest of an
entry: the arguments it sizes lists and batches by, and the row binding it claims.
"""

from __future__ import annotations

from graphql import GraphQLObjectType

from schema import build_schema
from schema.fields import FIELDS, SizedBy

SCHEMA = build_schema()._schema


def _arguments_of(key: str) -> set[str]:
    type_name, _, field_name = key.partition(".")
    kind = SCHEMA.get_type(type_name)
    assert isinstance(kind, GraphQLObjectType), key
    return set(kind.fields[field_name].args)


def test_every_list_size_and_batch_names_an_argument_of_its_field() -> None:
    named = {
        (key, sizing.argument)
        for key, f in FIELDS.items()
        for sizing in (f.list_size, f.batch)
        if isinstance(sizing, SizedBy)
    }
    assert named, "the registry sizes lists by arguments"
    assert sorted((k, a) for k, a in named if a not in _arguments_of(k)) == []


def test_every_exclusive_argument_is_an_argument_of_its_field() -> None:
    exclusive = {key: f.one_of for key, f in FIELDS.items() if f.one_of}
    assert exclusive == {"Query.foreigner": ("permitNumber", "ssn")}
    assert all(set(names) <= _arguments_of(key) for key, names in exclusive.items())


def test_no_field_claims_a_row_binding_before_row_binding_is_enforced() -> None:
    assert sorted(key for key, f in FIELDS.items() if f.binding != "national") == []
