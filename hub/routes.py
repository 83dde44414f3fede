"""HTTP routes of the hub. The GraphQL route is the request path of docs/architecture.md."""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeout
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from strawberry.http.ides import get_graphql_ide_html

from auth import PURPOSE_HEADER, AuthError, Principal
from auth.errors import Unavailable
from auth.revocation import DATABASE_ERRORS
from hub.accesses import access_event
from hub.admission import BadRequest
from hub.admission import Shared as _Shared
from hub.admission import graphql_request_of as _graphql_request_of
from hub.admission import shared_checks as _shared_checks
from hub.components import Hub
from hub.documents import DocumentRefused
from hub.events import events_post
from hub.operations import check_operations_access
from hub.responses import JSONResponse, error_response
from hub.subscriptions import graphql_ws
from hub.transport import trace_id_of
from infra.kv import KeyValueUnavailable
from observability.audit import AuditEvent, AuditUnavailable, Kind
from observability.logs import bind_request
from observability.metrics import CONTENT_TYPE
from schema import GraphQLOutcome, GraphQLRequest
from schema.pipeline import Admission

__all__ = [
    "EVIDENCE_HEADER", "OUTAGES", "RECORD_HEADER", "dependency_unavailable", "internal_error",
    "routes",
]

log = logging.getLogger("hub.routes")


def _hub(request: Request) -> Hub:
    hub: Hub = request.app.state.hub
    return hub


async def _read_payload(request: Request) -> dict[str, Any]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise BadRequest("POST /graphql takes Content-Type: application/json")
    try:
        payload: Any = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        raise BadRequest("the body is not valid JSON") from None
    if not isinstance(payload, dict):
        raise BadRequest("the body must be one JSON object (batched requests are not accepted)")
    return payload


EVIDENCE_HEADER = "X-Hub-Evidence"
RECORD_HEADER = "X-Hub-Audit-Record"


@dataclass(slots=True)
class _Caller:
    started: float = field(default_factory=time.perf_counter)
    principal: Principal | None = None
    purpose: str | None = None

    def observe(self, hub: Hub, outcome: str, root_fields: str, refusal: str | None) -> None:
        hub.metrics.observe(
            client=self.principal.client_id if self.principal else None,
            root_fields=root_fields,
            outcome=outcome,
            seconds=time.perf_counter() - self.started,
            refusal=refusal,
        )


async def graphql_post(request: Request) -> Response:
    """The request path, in order. Every outcome, refusals included, is audited before release.

    The checks shared with every instance through Redis (revocation, request rate, cost budget)
    are read and counted in one round trip, once the local checks have run; refusals are still
    reported in the order of the request path: revoked, purpose, rate, input, policy, cost.
    Nothing reaches a source system before all of them have passed.
    """
    trace_id = trace_id_of(request.scope)
    bind_request(trace_id)
    hub = _hub(request)
    caller = _Caller()
    try:
        principal = await hub.auth.identify(request.headers.get("authorization"))
    except AuthError as exc:
        return await _refuse_auth(request, hub, caller, trace_id, exc)
    caller.principal = principal
    bind_request(trace_id, principal.client_id)
    purpose_refused: AuthError | None = None
    try:
        caller.purpose = hub.auth.purpose_of_use(principal, request.headers.get(PURPOSE_HEADER))
    except AuthError as exc:
        purpose_refused = exc
    input_refused: tuple[int, str, str] | None = None
    graphql_request: GraphQLRequest | None = None
    if purpose_refused is None:
        try:
            payload = await _read_payload(request)
            query = await hub.documents.resolve(principal.client_id, payload)
            graphql_request = _graphql_request_of(payload, query)
        except DocumentRefused as exc:
            input_refused = (exc.status, exc.code, exc.message)
        except BadRequest as exc:
            input_refused = (400, "BAD_USER_INPUT", exc.message)
        except DATABASE_ERRORS as exc:  # the trusted-document lookup
            log.warning("hub database unavailable (%s); request refused", type(exc).__name__)
            input_refused = (503, "UPSTREAM_UNAVAILABLE", "the hub database is unavailable")
    if graphql_request is None:
        shared = await _shared_checks(hub, principal, rate=purpose_refused is None, cost=None)
        early = await _refuse_early(request, hub, caller, trace_id, shared, purpose_refused)
        if early is not None:
            return early
        assert input_refused is not None
        status, code, message = input_refused
        retry = {"retry-after": str(Unavailable.retry_after)} if status == 503 else None
        return await _refuse(request, hub, caller, trace_id, status, code, message, retry)
    with hub.tracer.start_as_current_span("graphql") as span:
        admitted = await hub.graphql.admit(
            graphql_request, scopes=principal.scopes, trace_id=trace_id
        )
        admission = admitted if isinstance(admitted, Admission) else None
        # The cache entries of the permits the request names come in the same round trip.
        numbers = admission.permit_numbers if admission else ()
        shared = await _shared_checks(
            hub,
            principal,
            rate=True,
            cost=admission.cost if admission else None,
            reads=hub.permits.keys_of(numbers),
        )
        early = await _refuse_early(request, hub, caller, trace_id, shared, None)
        if early is not None:
            return early
        if isinstance(admitted, GraphQLOutcome):
            outcome = admitted
        elif shared.cost_retry_after is not None:
            outcome = hub.graphql.over_budget(admitted, shared.cost_retry_after, trace_id)
        else:
            view = hub.permits.primed(numbers, shared.read)
            outcome = await hub.graphql.execute(
                admitted,
                graphql_request,
                trace_id=trace_id,
                today=dt.date.today(),
                permits=view,
                known=view.all_hits(),
            )
        # Never the variables: they carry identity numbers.
        span.update_name(f"graphql {outcome.operation_name or 'anonymous'}")
        span.set_attribute("graphql.operation.name", outcome.operation_name or "")
        span.set_attribute("graphql.document.hash", outcome.document_hash or "")
        span.set_attribute("hub.client_id", principal.client_id)
        span.set_attribute("hub.outcome", outcome.outcome)
        if outcome.error_codes:
            span.set_attribute("hub.error_codes", outcome.error_codes)
    return await _release(request, hub, caller, trace_id, outcome)


async def _refuse_early(
    request: Request,
    hub: Hub,
    caller: _Caller,
    trace_id: str,
    shared: _Shared,
    purpose_refused: AuthError | None,
) -> Response | None:
    """The refusals that come before the request's input is looked at, in their order."""
    if shared.revoked is not None:
        return await _refuse_auth(request, hub, caller, trace_id, shared.revoked)
    if purpose_refused is not None:
        return await _refuse_auth(request, hub, caller, trace_id, purpose_refused)
    if shared.rate_retry_after is not None:
        retry_after = shared.rate_retry_after
        message = f"too many requests from this client; retry in {retry_after} s"
        return await _refuse(
            request, hub, caller, trace_id, 429, "RATE_LIMITED", message,
            {"retry-after": str(retry_after)},
        )
    return None


async def _refuse_auth(
    request: Request, hub: Hub, caller: _Caller, trace_id: str, exc: AuthError
) -> Response:
    return await _refuse(
        request, hub, caller, trace_id, exc.status, exc.code, exc.description,
        _www_authenticate(exc),
    )


def _www_authenticate(exc: AuthError) -> dict[str, str]:
    if isinstance(exc, Unavailable):
        return {"retry-after": str(exc.retry_after)}
    return {"www-authenticate": exc.www_authenticate()} if exc.status == 401 else {}


AUDIT_READS = frozenset({"Query.accessLog", "Query.subjectAccessLog"})


def _event(
    request: Request,
    caller: _Caller,
    trace_id: str,
    *,
    outcome: str,
    body: bytes,
    kind: Kind = "graphql",
    **fields: Any,
) -> AuditEvent:
    return access_event(
        kind, outcome, principal=caller.principal, trace_id=trace_id,
        client_address=request.client.host if request.client else None, body=body,
        purpose=caller.purpose, **fields,
    )


async def _release(
    request: Request, hub: Hub, caller: _Caller, trace_id: str, outcome: GraphQLOutcome
) -> Response:
    """No audit, no data: the body leaves only once its record is committed and its evidence
    (one signature per commit batch, a Merkle path per response) is made."""
    body = orjson.dumps(outcome.body)
    event = _event(
        request,
        caller,
        trace_id,
        outcome=outcome.outcome,
        body=body,
        kind="audit_read" if AUDIT_READS.intersection(outcome.fields) else "graphql",
        operation=outcome.operation_name,
        document_hash=outcome.document_hash,
        fields=tuple(outcome.fields),
        subjects=tuple(outcome.subjects),
        denied=tuple(outcome.denied),
        error_codes=tuple(outcome.error_codes),
    )
    try:
        with hub.tracer.start_as_current_span("audit.append"):
            stored = await hub.audit.append_with_evidence(event, body)
    except AuditUnavailable:
        log.error("audit store unavailable; response withheld (trace %s)", trace_id)
        caller.observe(hub, "ERROR", "-", "INTERNAL")
        retry = {"retry-after": str(Unavailable.retry_after)}
        message = "The hub cannot record this access now."
        return error_response(503, "INTERNAL", message, trace_id, retry)
    roots = ",".join(f for f in outcome.fields if f.startswith(("Query.", "Mutation.")))
    refusal = outcome.error_codes[0] if outcome.status >= 400 and outcome.error_codes else None
    caller.observe(hub, outcome.outcome, roots, refusal)
    headers = {**outcome.headers, EVIDENCE_HEADER: stored.evidence, RECORD_HEADER: stored.record.id}
    return Response(
        body, status_code=outcome.status, media_type="application/json", headers=headers
    )


async def _refuse(
    request: Request,
    hub: Hub,
    caller: _Caller,
    trace_id: str,
    status: int,
    code: str,
    message: str,
    headers: dict[str, str] | None = None,
) -> Response:
    """A refusal carries no data; it is recorded, and still sent if the record cannot be."""
    response = error_response(status, code, message, trace_id, headers)
    event = _event(
        request,
        caller,
        trace_id,
        outcome="DENIED" if status in (401, 403) else "ERROR",
        body=bytes(response.body),
        error_codes=(code,),
    )
    try:
        await hub.audit.append(event)
    except AuditUnavailable:
        log.error("audit store unavailable; refusal not recorded (trace %s)", trace_id)
    caller.observe(hub, "DENIED" if status in (401, 403) else "ERROR", "-", code)
    return response


async def graphql_get(request: Request) -> Response:
    if "text/html" in request.headers.get("accept", "") and "query" not in request.query_params:
        return HTMLResponse(get_graphql_ide_html("graphiql"))
    trace_id = trace_id_of(request.scope)
    return error_response(
        405, "BAD_USER_INPUT", "send GraphQL requests with POST", trace_id, {"allow": "POST"}
    )


async def internal_error(request: Request, exc: Exception) -> Response:
    """Anything unexpected: logged with its trace id, masked for the client (no stack, no SQL)."""
    trace_id = trace_id_of(request.scope)
    log.exception("unexpected error (trace %s)", trace_id)
    return error_response(500, "INTERNAL", "Internal error.", trace_id)


#: Exceptions that mean the hub database, the audit store or Redis is down, wherever they come
#: from: answered 503 with Retry-After by `dependency_unavailable`, not 500.
OUTAGES: tuple[type[Exception], ...] = (
    AuditUnavailable, KeyValueUnavailable, DBAPIError, SQLAlchemyTimeout, ConnectionError,
)


async def dependency_unavailable(request: Request, exc: Exception) -> Response:
    """A dependency outage no route mapped itself: 503, Retry-After, one log line (no stack)."""
    trace_id = trace_id_of(request.scope)
    log.warning("dependency unavailable on %s (%s; trace %s)",
                request.url.path, type(exc).__name__, trace_id)
    retry = {"retry-after": str(Unavailable.retry_after), "cache-control": "no-store"}
    if request.url.path.startswith("/oauth/"):  # RFC 6749 error form on the OAuth routes
        body = {"error": "temporarily_unavailable", "error_description": "try again later"}
        return JSONResponse(body, status_code=503, headers=retry)
    return error_response(
        503, "UPSTREAM_UNAVAILABLE", "The hub cannot answer now; retry.", trace_id, retry
    )


async def metrics(request: Request) -> Response:
    """Operators only (`hub.operations`): the samples name every client and its traffic."""
    hub = _hub(request)
    try:
        await check_operations_access(request, hub)
    except AuthError as exc:
        trace_id = trace_id_of(request.scope)
        return error_response(
            exc.status, exc.code, exc.description, trace_id, _www_authenticate(exc)
        )
    return Response(hub.metrics.render(), media_type=CONTENT_TYPE)


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    """The overall status for anyone (a load balancer); the checks for operators only."""
    hub = _hub(request)
    try:
        await check_operations_access(request, hub)
    except AuthError:
        ready = all(ok is not False for ok in (await hub.shared_readiness()).values())
        status = "ready" if ready else "unready"
        return JSONResponse({"status": status}, status_code=200 if ready else 503)
    checks = await hub.readiness()
    ready = all(ok is not False for ok in checks.values())
    return JSONResponse(
        {
            "status": "ready" if ready else "unready",
            "checks": checks,
            "signing_key_age_seconds": round(hub.auth.signing_key_age()),
        },
        status_code=200 if ready else 503,
    )


def routes() -> list[BaseRoute]:
    return [
        Route("/graphql", graphql_post, methods=["POST"]),
        Route("/graphql", graphql_get, methods=["GET"]),
        WebSocketRoute("/graphql", graphql_ws),
        Route("/events/permits", events_post, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]
