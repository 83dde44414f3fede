"""Purposes bound to operations: the root fields a request runs, against those its purpose covers.

    PurposeCheck.not_covered(prepared, operation_name, covers) -> ("updateCardStatus", ...)

A request names its purpose of use; the purpose registry (`auth.purposes`) says which root
fields (queries, mutations, subscriptions) a request made for it may run. The root fields of a
request are those of the operation that would run: the one `operationName` names, or the only
one. When no single operation is chosen (nothing runs: the request is refused later for it),
every operation of the document counts, so that no choice can make a field escape the check.
Fragments spread or inlined at the root are followed, aliases are seen through (a field's
name, not its response key), and fields under `@skip`/`@include` count whatever the variables.
The introspection fields (`__typename`, `__schema`, `__type`) and federation's `_service` are
always allowed. Federation's `_entities` counts as the root field that reads each entity type
its selection names (`schema.entities.ENTITY_ROOTS`: `permit` for `... on WorkPermit`,
`enrollment` for `... on Enrollment`); the pipeline refuses a representation of a type the
selection does not name, so no entity is read past this check.

Decisions are cached per (document, operation name, purpose's operations): a request on the
hot path pays one dictionary lookup. Never: decide anything else about a document here (field
scopes are `schema.policy`'s).
"""

from __future__ import annotations

from collections import OrderedDict

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
)

from schema.document import PreparedDocument
from schema.entities import ENTITIES, ENTITY_ROOTS, entity_types
from schema.fields import FIELDS

__all__ = ["ROOT_FIELDS", "ROOT_TYPES", "PurposeCheck", "root_fields"]

ROOT_TYPES = ("Query", "Mutation", "Subscription")

#: Every root field of the schema: what a purpose may cover (the field registry has them all).
#: Not federation's `_service` and `_entities`, which are covered as said above.
ROOT_FIELDS: frozenset[str] = frozenset(
    name
    for parent, _, name in (key.partition(".") for key in FIELDS)
    if parent in ROOT_TYPES and not name.startswith("_")
)


def root_fields(document: DocumentNode, operation_name: str | None) -> frozenset[str]:
    """The names of the root fields the request would run (introspection fields left out)."""
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is not None:
        chosen = [op for op in operations if op.name and op.name.value == operation_name]
    else:
        chosen = operations if len(operations) == 1 else []
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    found: set[str] = set()
    spread: set[str] = set()

    def walk(selections: SelectionSetNode) -> None:
        for selection in selections.selections:
            if isinstance(selection, FieldNode):
                name = selection.name.value
                if name == ENTITIES:
                    types = entity_types(selection, document)
                    found.update(ENTITY_ROOTS[t][1] for t in types if t in ENTITY_ROOTS)
                    found.update(() if types & ENTITY_ROOTS.keys() else (ENTITIES,))
                elif not name.startswith("__") and name != "_service":
                    found.add(name)
            elif isinstance(selection, InlineFragmentNode):
                walk(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                if name not in spread and name in fragments:
                    spread.add(name)  # each once: a validated document has no cycles anyway
                    walk(fragments[name].selection_set)

    for operation in chosen or operations:
        walk(operation.selection_set)
    return frozenset(found)


class PurposeCheck:
    """The root fields of a request its purpose does not cover, cached per (document,
    operation name, the purpose's operations)."""

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._items: OrderedDict[tuple[str, str | None, frozenset[str]], tuple[str, ...]] = (
            OrderedDict()
        )

    def not_covered(
        self, prepared: PreparedDocument, operation_name: str | None, covers: frozenset[str]
    ) -> tuple[str, ...]:
        """Sorted; empty when the purpose covers every root field the request would run."""
        assert prepared.document is not None
        key = (prepared.text_hash, operation_name, covers)
        missing = self._items.get(key)
        if missing is None:
            missing = tuple(sorted(root_fields(prepared.document, operation_name) - covers))
            self._items[key] = missing
            if len(self._items) > self._size:
                self._items.popitem(last=False)
        return missing
