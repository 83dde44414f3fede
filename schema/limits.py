"""Query limits, checked before execution: size, tokens, shape and cost (docs/architecture.md).

Three stages, each as early and as cheap as it can be:

1. `check_size` runs on the raw text before anything is parsed or cached, so junk never costs a
   parse nor a cache slot.
2. `QueryLimits.parse` replaces the plain parse of `schema.document`: it parses with the token
   limit, then screens the syntax tree (depth with fragments expanded, aliases, root fields, total
   fields) *before* validation, whose overlapping-fields rule is quadratic in repeated fields.
   Its verdict is cached with the prepared document.
3. `QueryLimits.check_cost` runs per request. The cost of each operation is worked out once per
   document as a small polynomial whose only unknowns are the list sizes given by variables
   (`permits(numbers: $ns)`, `accessLog(first: $n)`); a request only evaluates it.

Cost model: a field costs what its entry in `schema.fields.FIELDS` says (1, or
`CONNECTOR_FIELD_COST` for a field resolved through a connector, a DataLoader); a field's cost is
multiplied by the sizes of the lists above it. A list's size is what its entry says (its sizing
argument, or a fixed size) where it says one, else `DEFAULT_LIST_SIZE`.
Introspection is left to graphql-core's `MaxIntrospectionDepthRule` and costs nothing here: it
never reaches a source system.

Over a limit: `QueryTooComplex`, naming the limit and the value. Nothing here executes anything.
The per-client cost budget that spends these costs is `infra.counters.CostBudget`.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    ListValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValueNode,
    VariableNode,
    parse,
    value_from_ast_untyped,
)

from schema.document import PreparedDocument
from schema.errors import QueryTooComplex
from schema.fields import CONNECTOR_FIELD_COST, SizedBy, entry

__all__ = [
    "CONNECTOR_FIELD_COST",
    "DEFAULT_LIST_SIZE",
    "CostPlan",
    "Limits",
    "QueryLimits",
    "Shape",
    "check_size",
    "plan_cost",
    "shape_of",
]

DEFAULT_LIST_SIZE = 10
INTROSPECTION_ROOTS = frozenset({"__schema", "__type"})


@dataclass(frozen=True, slots=True)
class Limits:
    max_depth: int = 10
    max_aliases: int = 30
    max_root_fields: int = 20
    max_fields: int = 200
    max_document_bytes: int = 16 * 1024
    max_tokens: int = 5000
    max_cost: int = 20_000
    max_batch_items: int = 500  # the numbers of all batch fields of one request, together


def _too_complex(limit: str, value: int | str, maximum: int) -> QueryTooComplex:
    return QueryTooComplex(
        f"{limit} is {value}, over the limit of {maximum}",
        limit=limit,
        value=value,
        maximum=maximum,
    )


def check_size(text: str, limits: Limits) -> QueryTooComplex | None:
    """The document's size in UTF-8 bytes, checked before it is parsed or cached."""
    if len(text) <= limits.max_document_bytes // 4:  # cannot be over, whatever it holds
        return None
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > limits.max_document_bytes:
        return _too_complex("max_document_bytes", size, limits.max_document_bytes)
    return None


# ---- the shape of the syntax tree (before validation) ------------------------------------------


@dataclass(frozen=True, slots=True)
class Shape:
    depth: int  # deepest field, fragments expanded, introspection excluded
    aliases: int  # alias nodes written in the document
    root_fields: int  # most fields at the root of one operation, fragments expanded
    fields: int  # field nodes written in the document


class _ShapeWalker:
    """Depth and root fields with fragments expanded once each (memoized, cycle-safe)."""

    def __init__(self, fragments: Mapping[str, FragmentDefinitionNode]) -> None:
        self._fragments = fragments
        self._depth: dict[str, int] = {}
        self._roots: dict[str, int] = {}
        self._open: set[str] = set()  # cycles are validation's to report; count them as empty

    def depth(self, selections: SelectionSetNode | None) -> int:
        deepest = 0
        for node in selections.selections if selections else ():
            if isinstance(node, FieldNode):
                if node.name.value not in INTROSPECTION_ROOTS:
                    deepest = max(deepest, 1 + self.depth(node.selection_set))
            elif isinstance(node, InlineFragmentNode):
                deepest = max(deepest, self.depth(node.selection_set))
            elif isinstance(node, FragmentSpreadNode):
                deepest = max(deepest, self._spread(node.name.value, self._depth, self.depth))
        return deepest

    def root_fields(self, selections: SelectionSetNode | None) -> int:
        count = 0
        for node in selections.selections if selections else ():
            if isinstance(node, FieldNode):
                count += 1
            elif isinstance(node, InlineFragmentNode):
                count += self.root_fields(node.selection_set)
            elif isinstance(node, FragmentSpreadNode):
                count += self._spread(node.name.value, self._roots, self.root_fields)
        return count

    def _spread(self, name: str, memo: dict[str, int], measure: Any) -> int:
        if name in memo:
            return memo[name]
        fragment = self._fragments.get(name)
        if fragment is None or name in self._open:
            return 0
        self._open.add(name)
        memo[name] = measure(fragment.selection_set)
        self._open.discard(name)
        return memo[name]


def shape_of(document: DocumentNode) -> Shape:
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    walker = _ShapeWalker(fragments)
    aliases = fields = 0
    stack: list[SelectionSetNode] = [
        d.selection_set
        for d in document.definitions
        if isinstance(d, OperationDefinitionNode | FragmentDefinitionNode)
    ]
    while stack:
        for node in stack.pop().selections:
            if isinstance(node, FieldNode):
                fields += 1
                aliases += node.alias is not None
            if isinstance(node, FieldNode | InlineFragmentNode) and node.selection_set:
                stack.append(node.selection_set)
    return Shape(
        depth=max((walker.depth(op.selection_set) for op in operations), default=0),
        aliases=aliases,
        root_fields=max((walker.root_fields(op.selection_set) for op in operations), default=0),
        fields=fields,
    )


# ---- cost: once per document, evaluated per request --------------------------------------------

# A term's key lists the sizing references it is multiplied by: (variable, fallback) pairs.
_Ref = tuple[str, int]
_Poly = dict[tuple[_Ref, ...], float]


def _add(into: _Poly, poly: _Poly, factor: float = 1.0, ref: _Ref | None = None) -> None:
    for key, coefficient in poly.items():
        new_key = tuple(sorted((*key, ref))) if ref is not None else key
        into[new_key] = into.get(new_key, 0.0) + coefficient * factor


_Terms = tuple[tuple[tuple[_Ref, ...], float], ...]


@dataclass(frozen=True, slots=True)
class CostPlan:
    """The cost of each operation of one document, as polynomials over variable list sizes;
    and likewise the batch items it asks for (each field's `batch`, times the lists above it)."""

    operations: Mapping[str | None, _Terms]
    batch_items: Mapping[str | None, _Terms] = field(default_factory=dict)

    def cost(self, operation_name: str | None, variables: Mapping[str, Any] | None) -> int | None:
        """None when the operation is not in the document (the pipeline refuses that itself)."""
        return _evaluate(self.operations, operation_name, variables)

    def items(self, operation_name: str | None, variables: Mapping[str, Any] | None) -> int | None:
        """The batch items of one request, literal or from variables alike."""
        return _evaluate(self.batch_items, operation_name, variables)


def _evaluate(
    operations: Mapping[str | None, _Terms],
    operation_name: str | None,
    variables: Mapping[str, Any] | None,
) -> int | None:
    if operation_name is None and len(operations) == 1:
        terms = next(iter(operations.values()))
    elif operation_name in operations:
        terms = operations[operation_name]
    else:
        return None
    given = variables or {}
    total = 0.0
    for refs, coefficient in terms:
        sizes = (_size(given.get(name), fallback) for name, fallback in refs)
        total += coefficient * math.prod(sizes)
    return math.ceil(total)


def _size(value: Any, fallback: int) -> int:
    if isinstance(value, list):
        return len(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return max(value, 0)
    return fallback if value is None else 1  # a single value given for a list is a list of one


def _unwrap(kind: GraphQLOutputType) -> tuple[GraphQLOutputType, bool]:
    is_list = False
    while isinstance(kind, GraphQLNonNull | GraphQLList):
        is_list = is_list or isinstance(kind, GraphQLList)
        kind = kind.of_type
    return kind, is_list


class _CostWalker:
    """`items=False`: the cost polynomial; `items=True`: the batch items', where a field's own
    share is the size of its batch argument (0 for other fields), multiplied the same way."""

    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: Mapping[str, FragmentDefinitionNode],
        defaults: Mapping[str, Any],
        *,
        items: bool = False,
    ) -> None:
        self._items = items
        self._schema = schema
        self._fragments = fragments
        self._defaults = defaults  # variable defaults of the operation being costed
        self._memo: dict[str, _Poly] = {}

    def selections(self, parent: GraphQLObjectType | None, node: SelectionSetNode | None) -> _Poly:
        total: _Poly = {}
        for selection in node.selections if node else ():
            if isinstance(selection, FieldNode):
                _add(total, self._field(parent, selection))
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                inner = self._object(condition.name.value) if condition else parent
                _add(total, self.selections(inner, selection.selection_set))
            elif isinstance(selection, FragmentSpreadNode):
                _add(total, self._fragment(selection.name.value))
        return total

    def _fragment(self, name: str) -> _Poly:
        if name not in self._memo:
            fragment = self._fragments[name]
            inner = self._object(fragment.type_condition.name.value)
            self._memo[name] = self.selections(inner, fragment.selection_set)
        return self._memo[name]

    def _object(self, name: str) -> GraphQLObjectType | None:
        kind = self._schema.get_type(name)
        return kind if isinstance(kind, GraphQLObjectType) else None  # interfaces: none yet

    def _field(self, parent: GraphQLObjectType | None, node: FieldNode) -> _Poly:
        name = node.name.value
        if parent is None or name.startswith("__"):
            return {}  # introspection and __typename never reach a source system
        definition = parent.fields[name]
        child, is_list = _unwrap(definition.type)
        poly = self._own(parent.name, node)
        if node.selection_set is None:
            return poly
        inner = self.selections(
            child if isinstance(child, GraphQLObjectType) else None, node.selection_set
        )
        found = entry(parent.name, name)
        sizing = found.list_size if found is not None else None
        if sizing is None:
            sizing = DEFAULT_LIST_SIZE if is_list else 1
        if isinstance(sizing, int):
            _add(poly, inner, float(sizing))
            return poly
        size = self._argument_size(node, sizing)
        if isinstance(size, int):
            _add(poly, inner, float(size))
        else:
            _add(poly, inner, 1.0, size)
        return poly

    def _own(self, parent: str, node: FieldNode) -> _Poly:
        found = entry(parent, node.name.value)
        if not self._items:
            return {(): float(found.cost if found is not None else 1)}
        batch = found.batch if found is not None else None
        if batch is None:
            return {}
        size = self._argument_size(node, batch)
        return {(): float(size)} if isinstance(size, int) else {(size,): 1.0}

    def _argument_size(self, node: FieldNode, sizing: SizedBy) -> int | _Ref:
        value: ValueNode | None = next(
            (a.value for a in node.arguments or () if a.name.value == sizing.argument), None
        )
        if value is None:
            return sizing.default
        if isinstance(value, VariableNode):
            default = self._defaults.get(value.name.value)
            fallback = _size(default, sizing.default) if default is not None else sizing.default
            return (value.name.value, fallback)
        if isinstance(value, ListValueNode):
            return len(value.values)
        if isinstance(value, IntValueNode):
            return max(int(value.value), 0)
        return 1


def plan_cost(schema: GraphQLSchema, document: DocumentNode) -> CostPlan:
    """The cost polynomials of every operation of a *validated* document."""
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    operations: dict[str | None, _Terms] = {}
    batch_items: dict[str | None, _Terms] = {}
    for op in document.definitions:
        if not isinstance(op, OperationDefinitionNode):
            continue
        defaults = {
            v.variable.name.value: value_from_ast_untyped(v.default_value)
            for v in op.variable_definitions or ()
            if v.default_value is not None
        }
        root = _root_type(schema, op)
        poly = _CostWalker(schema, fragments, defaults).selections(root, op.selection_set)
        operations[op.name.value if op.name else None] = tuple(poly.items())
        walker = _CostWalker(schema, fragments, defaults, items=True)
        items = walker.selections(root, op.selection_set)
        batch_items[op.name.value if op.name else None] = tuple(items.items())
    return CostPlan(operations, batch_items)


def _root_type(schema: GraphQLSchema, op: OperationDefinitionNode) -> GraphQLObjectType | None:
    roots = {
        "query": schema.query_type,
        "mutation": schema.mutation_type,
        "subscription": schema.subscription_type,
    }
    return roots[op.operation.value]


# ---- the service-facing object ------------------------------------------------------------------


class QueryLimits:
    """The limits of one hub process; the cost plans are cached per document hash (LRU)."""

    def __init__(self, schema: GraphQLSchema, limits: Limits, cache_size: int = 1024) -> None:
        self.limits = limits
        self._schema = schema
        self._size = cache_size
        self._plans: OrderedDict[str, CostPlan] = OrderedDict()

    def check_size(self, text: str) -> QueryTooComplex | None:
        return check_size(text, self.limits)

    def parse(self, text: str) -> DocumentNode:
        """Parse with the token limit, then refuse a shape over the limits (raises GraphQLError)."""
        try:
            document = parse(text, max_tokens=self.limits.max_tokens)
        except GraphQLError as exc:
            if "tokens" in exc.message and "Parsing aborted" in exc.message:
                raise _too_complex(
                    "max_tokens", f"more than {self.limits.max_tokens}", self.limits.max_tokens
                ) from None
            raise
        shape = shape_of(document)
        for limit, value, maximum in (
            ("max_depth", shape.depth, self.limits.max_depth),
            ("max_aliases", shape.aliases, self.limits.max_aliases),
            ("max_root_fields", shape.root_fields, self.limits.max_root_fields),
            ("max_fields", shape.fields, self.limits.max_fields),
        ):
            if value > maximum:
                raise _too_complex(limit, value, maximum)
        return document

    def plan(self, prepared: PreparedDocument) -> CostPlan:
        assert prepared.document is not None and not prepared.errors
        plan = self._plans.get(prepared.text_hash)
        if plan is None:
            plan = plan_cost(self._schema, prepared.document)
            self._plans[prepared.text_hash] = plan
            if len(self._plans) > self._size:
                self._plans.popitem(last=False)
        else:
            self._plans.move_to_end(prepared.text_hash)
        return plan

    def cost(
        self,
        prepared: PreparedDocument,
        operation_name: str | None,
        variables: Mapping[str, Any] | None,
    ) -> int | None:
        """The estimated cost of one request (None: the operation is not in the document)."""
        return self.plan(prepared).cost(operation_name, variables)

    def check_batch_items(
        self,
        prepared: PreparedDocument,
        operation_name: str | None,
        variables: Mapping[str, Any] | None,
    ) -> QueryTooComplex | None:
        """Refuse a request whose batch fields ask for more items together than one may."""
        items = self.plan(prepared).items(operation_name, variables)
        if items is not None and items > self.limits.max_batch_items:
            return _too_complex("max_batch_size", items, self.limits.max_batch_items)
        return None

    def check_cost(self, cost: int | None) -> QueryTooComplex | None:
        """Refuse a request whose cost (from `cost`, computed once per request) is too high."""
        if cost is not None and cost > self.limits.max_cost:
            return _too_complex("max_cost", cost, self.limits.max_cost)
        return None

