"""The GraphQL stage of the request path (docs/architecture.md), one named step each:

    prepare (cached parse + validate) -> cost -> policy (cached per scope set)
    -> purpose (cached per purpose) -> check arguments -> execute -> outcome

Nothing here runs a resolver before every check has passed. Nothing here knows HTTP or
WebSocket: a refusal is an outcome whose `refused` names its code, and the transport
(`hub.gate.STATUS`) maps that code to a status and headers.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field, replace
from inspect import isawaitable
from typing import Any, Literal

from graphql import (
    ExecutionResult,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    execute,
    subscribe,
)
from graphql.execution.values import VariableValues

from connectors.errors import ConnectorError
from connectors.records import Permit
from connectors.sources import PermitSource
from observability.audit import AuditLog
from schema.arguments import check_arguments, coerce_variables
from schema.context import HubContext
from schema.document import DocumentCache, PreparedDocument
from schema.entities import check_entities
from schema.errors import (
    BadUserInput,
    Forbidden,
    HubError,
    PurposeNotAllowed,
    RateLimited,
    code_of,
    format_error,
)
from schema.limits import Limits, QueryLimits
from schema.loaders import Sources, note_permits
from schema.named import named_subjects
from schema.person import person_guard
from schema.plans import PlanCache
from schema.policy import PolicyCache, filtered_schema
from schema.purposes import PurposeCheck
from schema.rows import OutOfJurisdiction, RowBoundExecutor, RowGuard, national
from schema.schema import build_schema
from schema.subjects import Touched
from schema.workflows.errors import OutOfJurisdiction as WritesOutOfJurisdiction

__all__ = ["Admission", "GraphQLOutcome", "GraphQLRequest", "GraphQLService", "Subscription"]

Outcome = Literal["OK", "PARTIAL", "DENIED", "ERROR"]


@dataclass(frozen=True, slots=True)
class GraphQLRequest:
    query: str
    variables: dict[str, Any] | None = None
    operation_name: str | None = None


@dataclass(slots=True)
class GraphQLOutcome:
    """What the transport sends and what the audit log records.

    `refused`: the code the request was refused with before anything ran (None: it ran, or
    it was introspection); the transport turns it into a status.
    """

    body: dict[str, Any]
    outcome: Outcome
    refused: str | None = None
    document_hash: str | None = None
    operation_name: str | None = None
    fields: list[str] = field(default_factory=list)
    denied: list[str] = field(default_factory=list)
    subjects: list[str] = field(default_factory=list)
    error_codes: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Subscription:
    """An admitted subscription: its results, one per event, until the stream is closed."""

    prepared: PreparedDocument
    operation_name: str | None
    context: HubContext
    results: AsyncIterator[ExecutionResult]
    fields: list[str]


@dataclass(slots=True)
class GraphQLStats:
    """Counters since start: `planned` requests were answered by a compiled plan."""

    planned: int = 0


@dataclass(frozen=True, slots=True)
class Admission:
    """A request that passed every check but its cost budget: what `execute` runs."""

    prepared: PreparedDocument
    operation: OperationDefinitionNode
    cost: int
    variables: VariableValues
    permit_numbers: tuple[str, ...] = ()  # named by `permit`/`permits`/`_entities`: read first
    bound: bool = False  # selects a field bound to the rows of the jurisdiction


def _name_of(operation: OperationDefinitionNode) -> str | None:
    """The operation's name as the document spells it (None if anonymous)."""
    return operation.name.value if operation.name else None


def _refusal(
    errors: list[GraphQLError],
    code: str,
    trace_id: str,
    prepared: PreparedDocument | None,
    outcome: Outcome = "ERROR",
    graphql_code: str | None = None,
) -> GraphQLOutcome:
    """`code`: what kind of refusal it is (the errors may carry several codes).
    `graphql_code`: the conventional code of a document that does not parse or validate
    (GRAPHQL_PARSE_FAILED, GRAPHQL_VALIDATION_FAILED), sent as `extensions.graphqlCode` beside
    the hub's own `code` on its BAD_USER_INPUT errors, for generic GraphQL clients."""
    formatted = [format_error(e, trace_id) for e in errors]
    if graphql_code is not None:
        for error in formatted:
            if error["extensions"]["code"] == "BAD_USER_INPUT":
                error["extensions"]["graphqlCode"] = graphql_code
    return GraphQLOutcome(
        body={"errors": formatted},
        outcome=outcome,
        refused=code,
        document_hash=prepared.text_hash if prepared else None,
        error_codes=sorted({f["extensions"]["code"] for f in formatted}),
    )


class GraphQLService:
    def __init__(
        self,
        sources: Sources,
        *,
        served_regions: frozenset[str],
        max_batch: int,
        audit: AuditLog | None = None,
        limits: Limits | None = None,
    ) -> None:
        self.schema = build_schema()
        self._graphql_schema = self.schema._schema
        self.limits = QueryLimits(self._graphql_schema, limits or Limits())
        self._documents = DocumentCache(self._graphql_schema, parse_document=self.limits.parse)
        self._policy = PolicyCache()
        self._purposes = PurposeCheck()
        self._plans = PlanCache(self._graphql_schema)
        self.stats = GraphQLStats()
        self._visible: dict[frozenset[str], GraphQLSchema | None] = {}
        self._sources = sources
        self._audit = audit
        self._served_regions = served_regions
        self._max_batch = max_batch

    def prepare(self, text: str) -> PreparedDocument:
        return self._documents.get(text)

    async def admit(
        self,
        request: GraphQLRequest,
        *,
        scopes: frozenset[str],
        purpose: str,
        covers: frozenset[str],
        trace_id: str,
        subscription: bool = False,
    ) -> Admission | GraphQLOutcome:
        """Every check but the cost budget, which the caller charges `cost` to (the gate
        counts it in the process with the request rate, after revocation). An outcome is a
        refusal, or the answer to an introspection query (which costs nothing). `purpose`: the
        request's purpose of use, `covers`: the root fields it covers (`schema.purposes`).
        `subscription`: the document must be a subscription (served over WebSocket), else it
        must not be one."""
        return await self._admit(
            request, scopes, (purpose, covers), trace_id, subscription=subscription
        )

    def subjects_named(self, request: GraphQLRequest) -> tuple[str, ...]:
        """The well-formed identifiers a refused request named (`schema.named`), at most the
        batch bound; for the audit record of a refusal only (admitted requests record what
        they touched). A document over the size limit is not parsed for this."""
        if self.limits.check_size(request.query) is not None:
            return ()
        prepared = self.prepare(request.query)  # cached: the refusal parsed it already
        return named_subjects(prepared, request.variables, self._max_batch)

    @staticmethod
    def over_budget(admission: Admission, retry_after: int, trace_id: str) -> GraphQLOutcome:
        """The refusal of an admitted request whose cost the client's budget cannot cover."""
        spent = RateLimited(
            f"the client's query cost budget is spent; retry in {retry_after} s",
            retryAfter=retry_after,
        )
        refusal = _refusal([spent], "RATE_LIMITED", trace_id, admission.prepared, outcome="DENIED")
        refusal.operation_name = _name_of(admission.operation)  # its record names what it ran
        return refusal

    async def execute(
        self,
        admission: Admission,
        request: GraphQLRequest,
        *,
        trace_id: str,
        today: dt.date,
        jurisdiction: tuple[str, ...],
        permits: PermitSource | None = None,
        known: Mapping[str, Permit] | None = None,
        person: str | None = None,
    ) -> GraphQLOutcome:
        """Run an admitted request (once its cost is charged: see `admit`).

        `jurisdiction`: the caller's (`Principal.jurisdiction`), which binds the rows of the
        fields bound to it (`schema.rows`). `permits`: this request's view of the permit
        source, if the caller has one (the HTTP route's, primed with the cache entries it read
        with the shared checks); `known`: the permits it has already read in full, which the
        resolvers then get at once. `person`: the person a SUBJECT token names: every row of
        their request is bound to them alone (`schema.person`), whatever the jurisdiction.
        """
        operation = admission.operation
        bind = admission.bound and not national(jurisdiction)
        planned = (
            self._planned(admission, today, known, jurisdiction, bind, trace_id)
            if known and person is None
            else None
        )
        if planned is not None:
            outcome = planned
        else:
            sources = self._sources if permits is None else replace(self._sources, permits=permits)
            rows = RowGuard(jurisdiction) if bind else None
            if person is not None:
                guarded = await _person_guard(sources, person)
                if isinstance(guarded, ExecutionResult):
                    outcome = _outcome_of(admission.prepared, None, guarded, trace_id, [], set())
                    outcome.operation_name = _name_of(operation)
                    return outcome
                rows = guarded
                jurisdiction = ()  # no region is a person's: a write would cover nothing
            context = HubContext.for_request(
                sources, today, self._audit, known, rows, jurisdiction=jurisdiction,
                person=person,
            )
            result = await self._execute(admission.prepared, request, context)
            outcome = self._outcome(admission.prepared, None, result, context, trace_id)
        outcome.operation_name = _name_of(operation)
        return outcome

    def _planned(
        self,
        admission: Admission,
        today: dt.date,
        known: Mapping[str, Permit],
        jurisdiction: tuple[str, ...],
        bind: bool,
        trace_id: str,
    ) -> GraphQLOutcome | None:
        """The answer of the document's compiled plan (`schema.plans`), if it has one that can
        answer from the permits in hand; the audit record names what graphql-core's would."""
        plan = self._plans.get(admission.prepared, admission.operation)
        if plan is None:
            return None
        rows = RowGuard(jurisdiction) if bind else None
        planned = plan.run(admission.variables, known, today, rows)
        if planned is None:
            return None
        self.stats.planned += 1
        touched = Touched()
        note_permits(touched, known)
        subjects = touched.subjects()
        if not planned.errors:
            return GraphQLOutcome(
                body={"data": planned.data},
                outcome="OK",
                document_hash=admission.prepared.text_hash,
                fields=list(admission.prepared.fields),
                subjects=subjects,
            )
        assert rows is not None  # a plan's only errors are refused rows
        result = ExecutionResult(planned.data, planned.errors)
        subjects = sorted({*subjects, *rows.refused})
        return _outcome_of(admission.prepared, None, result, trace_id, subjects, set())

    async def subscribe(
        self,
        admitted: Admission,
        request: GraphQLRequest,
        *,
        trace_id: str,
        today: dt.date,
        person: str | None = None,
    ) -> Subscription | GraphQLOutcome:
        """The stream of results of a subscription `admit(..., subscription=True)` admitted
        (and whose cost is charged); an outcome if its resolver failed before its first event.
        `person`: as for `execute` (their own permits' events only)."""
        prepared, operation = admitted.prepared, admitted.operation
        assert prepared.document is not None
        rows: RowGuard | None = None
        if person is not None:
            guarded = await _person_guard(self._sources, person)
            if isinstance(guarded, ExecutionResult):
                return _outcome_of(prepared, _name_of(operation), guarded, trace_id, [], set())
            rows = guarded
        context = HubContext.for_request(
            self._sources, today, self._audit, rows=rows, person=person
        )
        started = subscribe(
            self._graphql_schema,
            prepared.document,
            context_value=context,
            variable_values=request.variables,
            operation_name=_name_of(operation),
        )
        stream = await started if isawaitable(started) else started
        if isinstance(stream, ExecutionResult):  # the resolver failed before its first event
            return self._outcome(prepared, _name_of(operation), stream, context, trace_id)
        return Subscription(
            prepared=prepared,
            operation_name=_name_of(operation),
            context=context,
            results=stream,
            fields=list(prepared.fields),
        )

    def event_outcome(
        self, subscription: Subscription, result: ExecutionResult, trace_id: str
    ) -> GraphQLOutcome:
        """One result of a subscription, as `execute` would report it; its subjects only."""
        outcome = self._outcome(
            subscription.prepared, subscription.operation_name, result, subscription.context,
            trace_id,
        )
        subscription.context.touched.clear()  # the next event's subjects are its own
        return outcome

    async def _admit(
        self,
        request: GraphQLRequest,
        scopes: frozenset[str],
        purpose: tuple[str, frozenset[str]],
        trace_id: str,
        *,
        subscription: bool,
    ) -> Admission | GraphQLOutcome:
        too_large = self.limits.check_size(request.query)
        if too_large is not None:
            return _refusal([too_large], too_large.code, trace_id, None)
        prepared = self.prepare(request.query)
        if prepared.document is None or prepared.errors:
            failed = "GRAPHQL_PARSE_FAILED" if prepared.document is None else (
                "GRAPHQL_VALIDATION_FAILED"
            )
            return _refusal(
                list(prepared.errors), "BAD_USER_INPUT", trace_id, prepared, graphql_code=failed
            )
        cost = self.limits.cost(prepared, request.operation_name, request.variables)
        too_costly = self.limits.check_cost(cost)
        if too_costly is not None:
            return _refusal([too_costly], too_costly.code, trace_id, prepared)
        decision = self._policy.decide(prepared, scopes)
        if decision.denied:
            denied = Forbidden(
                "the document selects fields outside the client's scopes",
                denied=list(decision.denied),
            )
            refusal = _refusal([denied], "FORBIDDEN", trace_id, prepared, outcome="DENIED")
            refusal.denied = list(decision.denied)
            return refusal
        # Held to what the client may ever read (its scopes), then to what this request is
        # for: the operations its purpose covers.
        name, covers = purpose
        not_covered = self._purposes.not_covered(prepared, request.operation_name, covers)
        if not_covered:
            outside = PurposeNotAllowed(
                f"purpose {name} does not cover {', '.join(not_covered)}",
                purpose=name, notCovered=list(not_covered),
            )
            return _refusal([outside], outside.code, trace_id, prepared, outcome="DENIED")
        if decision.introspection and subscription:
            error = BadUserInput("introspection is served over POST /graphql")
            return _refusal([error], "BAD_USER_INPUT", trace_id, prepared)
        # Before introspection too: only a name of the document's may reach an audit record.
        operation = self._operation(prepared, request.operation_name, subscription)
        if isinstance(operation, HubError):
            return _refusal([operation], "BAD_USER_INPUT", trace_id, prepared)
        if decision.introspection:
            return await self._introspect(prepared, request, operation, scopes, trace_id)
        try:
            variables = coerce_variables(
                self._graphql_schema, operation.variable_definitions, request.variables or {}
            )
            permit_numbers = check_arguments(
                prepared.uses,
                variables,
                served_regions=self._served_regions,
                max_batch=self._max_batch,
            )
            outside_scopes = check_entities(prepared, variables, scopes)
        except BadUserInput as exc:
            return _refusal([exc], "BAD_USER_INPUT", trace_id, prepared)
        if outside_scopes:
            denied = Forbidden(
                "the document reads entities outside the client's scopes",
                denied=list(outside_scopes),
            )
            refusal = _refusal([denied], "FORBIDDEN", trace_id, prepared, outcome="DENIED")
            refusal.denied = list(outside_scopes)
            return refusal
        # After the per-field bound, which names the one field over it; this adds them up.
        too_many = self.limits.check_batch_items(
            prepared, request.operation_name, variables.coerced
        )
        if too_many is not None:
            return _refusal([too_many], too_many.code, trace_id, prepared)
        return Admission(
            prepared, operation, cost or 0, variables, permit_numbers, bound=decision.bound
        )

    async def _introspect(
        self,
        prepared: PreparedDocument,
        request: GraphQLRequest,
        operation: OperationDefinitionNode,
        scopes: frozenset[str],
        trace_id: str,
    ) -> GraphQLOutcome:
        """Introspection answers from the schema as this client may see it, and alone."""
        assert prepared.document is not None
        roots = ("Query", "Mutation", "Subscription")
        if any(u.parent in roots and not u.name.startswith("__") for u in prepared.uses):
            error = BadUserInput("send introspection and data queries as separate requests")
            return _refusal([error], "BAD_USER_INPUT", trace_id, prepared)
        if scopes not in self._visible:
            self._visible[scopes] = filtered_schema(self._graphql_schema, scopes)
        visible = self._visible[scopes]
        if visible is None:
            nothing = Forbidden("this client may read no field of the schema")
            return _refusal([nothing], "FORBIDDEN", trace_id, prepared, outcome="DENIED")
        name = _name_of(operation)
        result = execute(
            visible, prepared.document, variable_values=request.variables, operation_name=name
        )
        assert isinstance(result, ExecutionResult)
        return self._outcome(prepared, name, result, None, trace_id)

    def _operation(
        self, prepared: PreparedDocument, name: str | None, subscription: bool
    ) -> OperationDefinitionNode | HubError:
        assert prepared.document is not None
        operations = [
            d for d in prepared.document.definitions if isinstance(d, OperationDefinitionNode)
        ]
        chosen = operations[0] if name is None and len(operations) == 1 else None
        for op in operations:
            if name is not None and op.name and op.name.value == name:
                chosen = op
        if chosen is None:
            return BadUserInput("operationName must name one operation of the document")
        if chosen.operation is OperationType.SUBSCRIPTION and not subscription:
            return BadUserInput("subscriptions are served over WebSocket, not POST /graphql")
        if subscription and chosen.operation is not OperationType.SUBSCRIPTION:
            return BadUserInput("only subscriptions are served over WebSocket; use POST /graphql")
        return chosen

    async def _execute(
        self, prepared: PreparedDocument, request: GraphQLRequest, context: HubContext
    ) -> ExecutionResult:
        assert prepared.document is not None
        result = execute(
            self._graphql_schema,
            prepared.document,
            context_value=context,
            variable_values=request.variables,
            operation_name=request.operation_name,
            # Rows are checked as they are completed only when they are bound (`schema.rows`).
            executor_class=RowBoundExecutor if context.rows is not None else None,
        )
        if isinstance(result, ExecutionResult):
            return result
        return await result

    def _outcome(
        self,
        prepared: PreparedDocument,
        operation_name: str | None,
        result: ExecutionResult,
        context: HubContext | None,
        trace_id: str,
    ) -> GraphQLOutcome:
        if context is None:
            return _outcome_of(prepared, operation_name, result, trace_id, [], set())
        subjects = context.touched.subjects()
        if context.rows is not None and context.rows.refused:
            subjects = sorted({*subjects, *context.rows.refused})
        return _outcome_of(
            prepared, operation_name, result, trace_id, subjects, context.touched.item_errors,
            writes_refused=context.touched.only_refused,
        )


async def _person_guard(sources: Sources, person: str) -> RowGuard | ExecutionResult:
    """The person's guard, or the result to answer when a source system could not say which
    rows are theirs (UPSTREAM_*, nothing released: never a refusal of their own rows)."""
    try:
        return await person_guard(sources, person)
    except ConnectorError as exc:
        return ExecutionResult(None, [GraphQLError(str(exc), original_error=exc)])


def _outcome_of(
    prepared: PreparedDocument,
    operation_name: str | None,
    result: ExecutionResult,
    trace_id: str,
    subjects: list[str],
    item_errors: set[str],
    *,
    writes_refused: bool = False,
) -> GraphQLOutcome:
    """What is sent and recorded: a refused row (`schema.rows`, or a write's row in
    `schema.workflows`) makes the record PARTIAL, or DENIED when nothing at all was released,
    and its path is recorded as denied. `writes_refused`: a write refused items for the
    jurisdiction and did none (a batch whose every item was refused is DENIED too)."""
    errors = [format_error(e, trace_id) for e in result.errors or []]
    body: dict[str, Any] = {"data": result.data}
    if errors:
        body = {"errors": errors, "data": result.data}
    refused = [
        ".".join(str(step) for step in e.path or ())
        for e in result.errors or ()
        if isinstance(e.original_error, (OutOfJurisdiction, WritesOutOfJurisdiction))
    ]
    codes = {code_of(e) for e in result.errors or []} | item_errors
    outcome: Outcome = (
        "OK" if not errors and not item_errors else ("PARTIAL" if result.data else "ERROR")
    )
    if refused:
        outcome = "PARTIAL" if _released(result.data) else "DENIED"
    elif writes_refused and codes == {"FORBIDDEN"} and (result.data is None or not errors):
        outcome = "DENIED"
    return GraphQLOutcome(
        body=body,
        outcome=outcome,
        document_hash=prepared.text_hash,
        operation_name=operation_name,  # the document's, never the request's text
        fields=list(prepared.fields),
        denied=refused,
        subjects=subjects,
        error_codes=sorted(codes),
    )


def _released(data: dict[str, Any] | None) -> bool:
    """Whether an answer released anything: a root field with a value (a list of nulls is
    none)."""
    return any(
        value is not None and not (isinstance(value, list) and all(v is None for v in value))
        for value in (data or {}).values()
    )
