"""The request gate: the one admission step of every door that runs a GraphQL document.

    admit(hub, caller, authorization, purpose, read) -> Admitted | Refusal

`POST /graphql` and `GET /graphql` (hub.routes) and each WebSocket `subscribe`
(hub.subscriptions) call it; the permit events route uses its `Refusal` and the responder of
`hub.release`. In order:

1. the token (`auth` identify: signature, expiry, client registered and enabled) → TokenClaims;
2. the purpose of use: one the client is registered for, and for a purpose marked
   `needs_officer` an officer's token and an `X-Case-Reference` (checked now, reported after
   revocation);
3. the input: the door's payload, trusted documents, the GraphQL request's form, the door's
   own check (`vet`: a GET refuses a mutation);
4. the GraphQL stage's checks (`schema.pipeline`: parse and validation, limits, field policy,
   the root fields against those the purpose covers, arguments) → cost;
5. revocation and client disable, from this instance's replica of the denylist (no round
   trip; refused as unavailable when the replica is too stale), which turns the claims into a
   `Principal`; the request rate and the cost budget, counted in this process and decided at
   once (`infra.counters`: reconciled with the other instances in the background); and, only
   when the request names permit cache entries this instance holds no copy of, one
   shared-store round trip to read them.

Refusals are reported in the order of the request path whatever was learnt first: revoked,
purpose (PURPOSE_REQUIRED), rate, input, policy (FORBIDDEN, with the query limits before it),
the purpose's operations (PURPOSE_NOT_ALLOWED), the other GraphQL-stage checks, cost.
Nothing reaches a source system before all of them have passed. Every refusal of a request
whose document could be read names the identifiers it asked about (a purpose refusal too: its
input is read for that alone, and whatever goes wrong reading it leaves the refusal as it
was). See docs/architecture.md.

`STATUS` is the one table from refusal codes to HTTP statuses: the GraphQL stage names codes,
the transport maps them. Never: render a refusal here (that is `hub.release`), or run a
resolver.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import orjson
from starlette.requests import ClientDisconnect

from auth import AuthError, Principal, TokenClaims, case_reference_of
from auth.errors import PurposeRequired, Unavailable
from auth.revocation import DATABASE_ERRORS
from hub.accesses import access_event
from hub.components import Hub
from hub.documents import DocumentRefused
from hub.transport import BodyTimeout, BodyTooLarge
from infra.kv import KeyValueUnavailable
from observability.audit import AuditEvent, Kind
from schema import GraphQLOutcome, GraphQLRequest
from schema.pipeline import Admission

__all__ = [
    "STATUS", "Admitted", "BadRequest", "Caller", "InputRefused", "Refusal", "admit",
    "graphql_refusal", "refusal",
]

log = logging.getLogger("hub.routes")  # the request path's log, whichever door

#: The HTTP status of each refusal code the GraphQL stage gives (auth errors carry their own).
STATUS: Mapping[str, int] = {
    "BAD_USER_INPUT": 400,
    "QUERY_TOO_COMPLEX": 400,
    "FORBIDDEN": 403,
    "PURPOSE_NOT_ALLOWED": 403,
    "RATE_LIMITED": 429,
}

RefusalOutcome = Literal["DENIED", "ERROR"]


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a request gets no data: what the client is told and what the audit log records.

    `errors`: the GraphQL errors as sent (`{"errors": errors}` is the body, on every door);
    `headers` go on an HTTP answer (a refusal that says when to retry also says it in the
    `retryAfter` extension, for the WebSocket, which has no headers).
    `token_refused`: the token no longer authenticates (a WebSocket then closes).
    `answered`: a refusal of the GraphQL stage, which an auditor may need to prove like an
    answer: released with evidence, and withheld if it cannot be recorded. The gate's earlier
    refusals carry no data and are sent even when the audit store is down.
    """

    status: int
    code: str
    message: str
    outcome: RefusalOutcome
    errors: tuple[dict[str, Any], ...]
    headers: Mapping[str, str] = field(default_factory=dict)
    error_codes: tuple[str, ...] = ()
    document_hash: str | None = None
    operation_name: str | None = None
    subjects: tuple[str, ...] = ()
    denied: tuple[str, ...] = ()
    token_refused: bool = False
    answered: bool = False

    @property
    def body(self) -> bytes:
        return orjson.dumps({"errors": list(self.errors)})


def refusal(
    status: int,
    code: str,
    message: str,
    trace_id: str,
    headers: Mapping[str, str] | None = None,
    *,
    token_refused: bool = False,
    subjects: tuple[str, ...] = (),
    **extensions: Any,
) -> Refusal:
    """A refusal the gate or a door decides itself (one error, no document)."""
    error = {"message": message, "extensions": {"code": code, **extensions, "traceId": trace_id}}
    return Refusal(
        status, code, message, "DENIED" if status in (401, 403) else "ERROR", (error,),
        headers or {}, (code,), subjects=subjects, token_refused=token_refused,
    )


def auth_refusal(exc: AuthError, trace_id: str, *, token: bool) -> Refusal:
    """`token`: the token itself was refused (not authenticated, revoked, status unknown)."""
    if isinstance(exc, Unavailable):
        headers = {"retry-after": str(exc.retry_after)}
    else:
        headers = {"www-authenticate": exc.www_authenticate()} if exc.status == 401 else {}
    extensions: dict[str, Any] = (
        {"purposes": list(exc.allowed)} if isinstance(exc, PurposeRequired) else {}
    )
    refused = refusal(
        exc.status, exc.code, exc.description, trace_id, headers, token_refused=token,
        **extensions,
    )
    if exc.reason is None:
        return refused
    # The client is told UNAUTHENTICATED; the record also says why, for the auditor.
    return replace(refused, error_codes=(*refused.error_codes, exc.reason))


def graphql_refusal(outcome: GraphQLOutcome, headers: Mapping[str, str] | None = None) -> Refusal:
    """The GraphQL stage's refusal (`outcome.refused` names its code), with its status."""
    assert outcome.refused is not None and outcome.outcome in ("DENIED", "ERROR")
    errors = tuple(outcome.body["errors"])
    return Refusal(
        STATUS[outcome.refused], outcome.refused, errors[0]["message"], outcome.outcome,
        errors, headers or {}, tuple(outcome.error_codes), outcome.document_hash,
        outcome.operation_name, tuple(outcome.subjects), tuple(outcome.denied), answered=True,
    )


@dataclass(slots=True)
class Caller:
    """Who is at a door, as far as the gate has learnt: the audit record's who and why."""

    kind: Kind
    trace_id: str
    client_address: str | None
    principal: TokenClaims | None = None
    # The client of a well-signed token refused before it became a principal (disabled).
    refused_client: str | None = None
    purpose: str | None = None
    operation: str | None = None  # what a refusal's record names when it has no operation
    case_reference: str | None = None  # X-Case-Reference, once checked
    started: float = field(default_factory=time.perf_counter)

    def event(self, outcome: str, body: bytes, *, kind: Kind | None = None,
              **fields: Any) -> AuditEvent:
        return access_event(
            kind or self.kind, outcome, principal=self.principal, trace_id=self.trace_id,
            client_address=self.client_address, body=body, purpose=self.purpose,
            client_id=self.refused_client, case_reference=self.case_reference, **fields,
        )

    def observe(self, hub: Hub, outcome: str, root_fields: str, refusal: str | None) -> None:
        hub.metrics.observe(
            client=self.principal.client_id if self.principal else None,
            root_fields=root_fields,
            outcome=outcome,
            seconds=time.perf_counter() - self.started,
            refusal=refusal,
        )


@dataclass(slots=True)
class Admitted:
    """A request that passed every check, charged to its client: what the door runs.

    `answer`: set when admission answered it already (introspection); `read`: the values of
    the permit cache entries of `admission.permit_numbers`, read in the shared round trip.
    """

    principal: Principal
    request: GraphQLRequest
    admission: Admission | None
    answer: GraphQLOutcome | None = None
    read: list[bytes | None] = field(default_factory=list)


class InputRefused(Exception):
    """The door's input is refused (`read` raises it): status, code and message as sent."""

    def __init__(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}


class BadRequest(InputRefused):
    def __init__(self, message: str) -> None:
        super().__init__(400, "BAD_USER_INPUT", message)


def graphql_request_of(payload: dict[str, Any], query: str | None) -> GraphQLRequest:
    """`query` is the document to run: sent, or resolved from a trusted document id."""
    variables, operation = payload.get("variables"), payload.get("operationName")
    if not isinstance(query, str) or not query.strip():
        raise BadRequest("`query` must be a non-empty string")
    if variables is not None and not isinstance(variables, dict):
        raise BadRequest("`variables` must be an object")
    if operation is not None and not isinstance(operation, str):
        raise BadRequest("`operationName` must be a string")
    return GraphQLRequest(query=query, variables=variables, operation_name=operation)


async def admit(
    hub: Hub,
    caller: Caller,
    authorization: str | None,
    purpose: str | None,
    read: Callable[[], Awaitable[dict[str, Any]]],
    *,
    subscription: bool = False,
    vet: Callable[[GraphQLRequest], InputRefused | None] | None = None,
    case: str | None = None,
) -> Admitted | Refusal:
    """Every check of the request path, in its order; sets `caller.principal` and `.purpose`
    as soon as they are known (so that a refusal names them). `read`: the door's payload
    (raises `InputRefused`); for a refused purpose, read only to name its subjects. `vet`: the
    door's own input check of the request (a GET refuses a mutation), an input refusal like
    `read`'s. `case`: the `X-Case-Reference` header, checked with the purpose (an officer's
    purpose needs it)."""
    trace_id = caller.trace_id
    try:
        claims = await hub.auth.identify(authorization)
    except AuthError as exc:
        caller.refused_client = exc.client_id
        return auth_refusal(exc, trace_id, token=True)
    caller.principal = claims
    purpose_refused: AuthError | None = None
    try:
        caller.purpose = hub.auth.purpose_of_use(claims, purpose)
        caller.case_reference = case_reference_of(claims, caller.purpose, case)
    except AuthError as exc:
        purpose_refused = exc
    request: GraphQLRequest | Refusal | None
    if purpose_refused is None:
        request = await _input(hub, claims, read, trace_id, vet)
    else:
        request = await _input_to_name(hub, claims, read)
    if purpose_refused is not None or not isinstance(request, GraphQLRequest):
        shared = await _shared(hub, claims, rate=purpose_refused is None, cost=None)
        refused = _early(shared, purpose_refused, trace_id) or request
        assert isinstance(refused, Refusal)  # the purpose or the input was refused
        if isinstance(request, GraphQLRequest):
            return _naming(hub, request, refused)
        return refused
    assert caller.purpose is not None
    graphql = await hub.graphql.admit(
        request, scopes=claims.scopes, purpose=caller.purpose,
        covers=claims.operations_of(caller.purpose), trace_id=trace_id,
        subscription=subscription,
    )
    admission = graphql if isinstance(graphql, Admission) else None
    numbers = admission.permit_numbers if admission and not subscription else ()
    shared = await _shared(
        hub, claims, rate=True, cost=admission.cost if admission else None,
        reads=hub.permits.keys_of(numbers) if numbers else (),
    )
    early = _early(shared, None, trace_id)
    if early is not None:
        return _naming(hub, request, early)
    assert shared.principal is not None
    if admission is None:
        assert isinstance(graphql, GraphQLOutcome)
        if graphql.refused is not None:
            return _naming(hub, request, graphql_refusal(graphql))
        return Admitted(shared.principal, request, None, answer=graphql)  # introspection
    if shared.cost_retry_after is not None:
        retry_after = shared.cost_retry_after
        spent = hub.graphql.over_budget(admission, retry_after, trace_id)
        return _naming(hub, request, graphql_refusal(spent, {"retry-after": str(retry_after)}))
    return Admitted(shared.principal, request, admission, read=shared.read)


def _naming(hub: Hub, request: GraphQLRequest, refused: Refusal) -> Refusal:
    """A refusal of a request whose document was read names the identifiers it asked about:
    an auditor finds who tried to read a person's data by that person's identifiers."""
    named = hub.graphql.subjects_named(request)
    if not named:
        return refused
    return replace(refused, subjects=tuple(dict.fromkeys((*refused.subjects, *named))))


async def _input(
    hub: Hub,
    claims: TokenClaims,
    read: Callable[[], Awaitable[dict[str, Any]]],
    trace_id: str,
    vet: Callable[[GraphQLRequest], InputRefused | None] | None,
) -> GraphQLRequest | Refusal:
    try:
        payload = await read()
        query = await hub.documents.resolve(claims.client_id, payload)
        request = graphql_request_of(payload, query)
        refused = vet(request) if vet is not None else None
        if refused is not None:
            raise refused
        return request
    except InputRefused as exc:
        return refusal(exc.status, exc.code, exc.message, trace_id, exc.headers)
    except DocumentRefused as exc:
        return refusal(exc.status, exc.code, exc.message, trace_id)
    except DATABASE_ERRORS as exc:  # the trusted-document lookup
        log.warning("hub database unavailable (%s); request refused", type(exc).__name__)
        retry = {"retry-after": str(Unavailable.retry_after)}
        return refusal(503, "UPSTREAM_UNAVAILABLE", "the hub database is unavailable",
                       trace_id, retry)


async def _input_to_name(
    hub: Hub, claims: TokenClaims, read: Callable[[], Awaitable[dict[str, Any]]]
) -> GraphQLRequest | None:
    """The request of a refused purpose, read only so that its refusal names its subjects;
    None if it cannot be read, for any reason: that must not change the refusal it gets (a
    body too large or too slow, a trusted document the database cannot look up now)."""
    try:
        payload = await read()
        request = graphql_request_of(payload, await hub.documents.resolve(claims.client_id,
                                                                          payload))
    except (DocumentRefused, InputRefused, BodyTooLarge, BodyTimeout, ClientDisconnect,
            *DATABASE_ERRORS):
        return None
    return request


def _early(shared: _Shared, purpose_refused: AuthError | None, trace_id: str) -> Refusal | None:
    """The refusals that come before the request's input is looked at, in their order."""
    if shared.revoked is not None:
        return auth_refusal(shared.revoked, trace_id, token=True)
    if purpose_refused is not None:
        return auth_refusal(purpose_refused, trace_id, token=False)
    if shared.rate_retry_after is not None:
        retry_after = shared.rate_retry_after
        message = f"too many requests from this client; retry in {retry_after} s"
        headers = {"retry-after": str(retry_after)}
        return refusal(429, "RATE_LIMITED", message, trace_id, headers, retryAfter=retry_after)
    return None


@dataclass(frozen=True, slots=True)
class _Shared:
    """What the shared store said: the principal (or why not), else seconds to wait."""

    principal: Principal | None = None
    revoked: AuthError | None = None
    rate_retry_after: int | None = None
    cost_retry_after: int | None = None
    read: list[bytes | None] = field(default_factory=list)  # the values of `reads`


async def _shared(
    hub: Hub, claims: TokenClaims, *, rate: bool, cost: int | None, reads: Sequence[str] = ()
) -> _Shared:
    """Revocation (this instance's replica, no round trip), then the request rate (if `rate`)
    and the cost budget (if a cost), counted in this process without waiting on the store.

    `reads`: keys to read from the shared store (the request's permit cache entries), in one
    round trip, only if there are any.

    Revocation fails CLOSED when the replica is too stale (`HUB_SHARED_STATE_MAX_STALENESS`):
    503 with Retry-After (the caller should retry, not fetch a new token), audited, no data.
    The rate and the budget never refuse for want of the store: each process counts on its own
    meanwhile (`infra.counters`); the permit entries then read as misses.
    """
    try:
        principal = hub.auth.judge_revocation(claims)
    except AuthError as exc:
        return _Shared(revoked=exc)
    now = hub.rate_limit.clock()  # injected: tests pick their window rather than wait
    values: list[bytes | None] = [None] * len(reads)
    if reads:
        try:
            values, _ = await hub.kv.read_and_count(list(reads), [])
        except KeyValueUnavailable as exc:
            log.warning("shared store unavailable (%s); permit cache entries read as misses", exc)
            values = [None] * len(reads)
    rate_decision = hub.rate_limit.charge(claims.client_id, 1, now) if rate else None
    cost_decision = (
        hub.cost_budget.charge(claims.client_id, cost, now) if cost is not None else None
    )
    return _Shared(
        principal=principal,
        rate_retry_after=(
            rate_decision.retry_after if rate_decision and not rate_decision.allowed else None
        ),
        cost_retry_after=(
            cost_decision.retry_after if cost_decision and not cost_decision.allowed else None
        ),
        read=values,
    )
