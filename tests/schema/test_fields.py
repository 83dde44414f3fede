"""The field registry's decisions name what the schema has.

Coverage (every field and argument of the schema has an entry, and no entry is stale) is held by
`test_policy_table.py` through the registry's scope views; these tests hold the rest of an
entry: the arguments it sizes lists and batches by, and the row binding it claims.
"""

from __future__ import annotations

from graphql import GraphQLObjectType, get_named_type

from schema import build_schema
from schema.fields import BOUND_SCOPES, FIELDS, SizedBy
from schema.rows import ROW_TYPES, permit_triggers

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


def test_a_field_is_bound_to_rows_exactly_when_its_scope_is_a_bound_data_scope() -> None:
    """`permit:validity` (and the scopes of no row data) is national, every other data scope
    bound: a field given a bound scope cannot be left national by forgetting its binding."""
    wrong = [
        key
        for key, f in FIELDS.items()
        if (f.binding == "region-of-row") != (f.scope in BOUND_SCOPES)
    ]
    assert wrong == []
    assert FIELDS["Query.permit"].binding == FIELDS["Query.permits"].binding == "national"
    assert FIELDS["WorkPermit.isValid"].binding == "national"
    assert FIELDS["WorkPermit.holder"].binding == FIELDS["Query.cards"].binding == "region-of-row"


def test_every_type_with_bound_fields_is_a_row_or_reached_only_through_bound_fields() -> None:
    """A bound field is checked against its row: the row types are checked by `schema.rows`
    (when completed, and before the fetch where the identifier tells), and any other type
    with bound fields (a foreigner, an employer) can only be reached through a bound field,
    which its row decided."""
    bound_types = {
        key.partition(".")[0] for key, f in FIELDS.items() if f.binding == "region-of-row"
    } - {"Query", "Mutation"}
    unchecked = []
    for type_name in sorted(bound_types - set(ROW_TYPES)):
        for parent in SCHEMA.type_map.values():
            if not isinstance(parent, GraphQLObjectType) or parent.name.startswith("__"):
                continue
            for name, definition in parent.fields.items():
                if get_named_type(definition.type).name != type_name:
                    continue
                if FIELDS[f"{parent.name}.{name}"].binding != "region-of-row":
                    unchecked.append(f"{parent.name}.{name}")
    assert unchecked == []
    assert bound_types - set(ROW_TYPES) == {"Employer", "Foreigner"}


def test_a_permit_is_bound_by_its_own_fields_and_not_by_its_links() -> None:
    """The fields of a row type that return rows of their own bind those rows instead."""
    for type_name in ROW_TYPES:
        kind = SCHEMA.get_type(type_name)
        assert isinstance(kind, GraphQLObjectType)
        links = {
            name for name, d in kind.fields.items() if get_named_type(d.type).name in ROW_TYPES
        }
        triggers = ROW_TYPES[type_name].triggers
        assert triggers is None or not (triggers & links), type_name
    assert permit_triggers() == {
        "holder", "employer", "category", "position", "workLocation",
        "notificationLetterNumber", "history",
    }
