"""Which fields a document selects under the field being resolved, read before its items resolve.

A list field uses it to load, once for the whole list, what its items' fields will ask for
(`schema.links`). Fragments are followed and `@skip` / `@include` are honoured as execution
honours them, so that nothing the document does not select is ever loaded.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from strawberry import Info
from strawberry.types.nodes import Directives, SelectedField, Selection

__all__ = ["selected"]


def selected(info: Info[Any, Any], on: str, names: frozenset[str]) -> frozenset[str]:
    """The ones of `names` (GraphQL field names) selected on type `on` under the current field."""
    found: set[str] = set()
    for field in info.selected_fields:  # the current field, once per node that selects it
        _visit(field.selections, on, names, found)
    return frozenset(found)


def _visit(
    selections: Iterable[Selection], on: str, names: frozenset[str], found: set[str]
) -> None:
    for selection in selections:
        if not _included(selection.directives):
            continue
        if isinstance(selection, SelectedField):
            if selection.name in names:
                found.add(selection.name)
        elif selection.type_condition in (None, on):
            _visit(selection.selections, on, names, found)


def _included(directives: Directives) -> bool:
    skip = directives.get("skip")
    include = directives.get("include")
    return not (skip and skip.get("if")) and (include is None or bool(include.get("if")))
