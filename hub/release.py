"""The audited responder: no audit, no data. Every door's answers and refusals leave here.

`refuse` records a refusal and counts it, for every door (POST /graphql, the permit events
route, a WebSocket subscription): a refusal carries no data, so it is sent even when its record
cannot be written (the failure is logged). `respond` and `answer` are the HTTP renderings:
an answer, and a refusal of the GraphQL stage, leave only once their record is committed and
their evidence (one signature per commit batch, a Merkle path per response) is made; if the
audit store cannot take them the client gets 503 and no body. A WebSocket sends its own
messages (hub.subscriptions) after `refuse` or its own audit. See docs/architecture.md.

Never: decide whether a request is admitted (that is `hub.gate`).
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from starlette.responses import Response

from auth.errors import Unavailable
from hub.components import Hub
from hub.gate import Caller, Refusal
from hub.responses import error_response
from observability.audit import AuditUnavailable, Kind
from schema import GraphQLOutcome

__all__ = ["AUDIT_READS", "EVIDENCE_HEADER", "RECORD_HEADER", "answer", "refuse", "respond"]

log = logging.getLogger("hub.routes")

EVIDENCE_HEADER = "X-Hub-Evidence"
RECORD_HEADER = "X-Hub-Audit-Record"
AUDIT_READS = frozenset({"Query.accessLog", "Query.subjectAccessLog"})


async def refuse(hub: Hub, caller: Caller, refusal: Refusal) -> None:
    """Record a refusal (best effort) and count it: every door, before it tells the client."""
    event = caller.event(
        refusal.outcome,
        refusal.body,
        operation=refusal.operation_name or caller.operation,
        document_hash=refusal.document_hash,
        subjects=refusal.subjects,
        denied=refusal.denied,
        error_codes=refusal.error_codes,
    )
    try:
        await hub.audit.append(event)
    except AuditUnavailable:
        log.error("audit store unavailable; refusal not recorded (trace %s)", caller.trace_id)
    if caller.kind == "event":
        hub.metrics.events_refused.labels(code=refusal.code).inc()
    else:
        caller.observe(hub, refusal.outcome, "-", next(iter(refusal.error_codes), None))


async def respond(hub: Hub, caller: Caller, refusal: Refusal) -> Response:
    """A refusal over HTTP: audited, then sent with its status and headers."""
    if refusal.answered:
        return await _evidenced(
            hub, caller, refusal.body, refusal.status, refusal.headers, refusal.outcome,
            "", refusal.error_codes[0] if refusal.error_codes else None,
            operation=refusal.operation_name, document_hash=refusal.document_hash,
            subjects=refusal.subjects, denied=refusal.denied, error_codes=refusal.error_codes,
        )
    await refuse(hub, caller, refusal)
    # Its errors as decided, extensions and all (the purposes a client may use, when to retry).
    return Response(refusal.body, status_code=refusal.status, media_type="application/json",
                    headers=dict(refusal.headers))


async def answer(hub: Hub, caller: Caller, outcome: GraphQLOutcome) -> Response:
    """An executed request's answer over HTTP (200, errors and all), once it is recorded."""
    roots = ",".join(f for f in outcome.fields if f.startswith(("Query.", "Mutation.")))
    return await _evidenced(
        hub, caller, orjson.dumps(outcome.body), 200, {}, outcome.outcome, roots, None,
        kind="audit_read" if AUDIT_READS.intersection(outcome.fields) else "graphql",
        operation=outcome.operation_name,
        document_hash=outcome.document_hash,
        fields=tuple(outcome.fields),
        subjects=tuple(outcome.subjects),
        denied=tuple(outcome.denied),
        error_codes=tuple(outcome.error_codes),
    )


async def _evidenced(
    hub: Hub,
    caller: Caller,
    body: bytes,
    status: int,
    headers: Any,
    outcome: str,
    roots: str,
    refusal: str | None,
    *,
    kind: Kind | None = None,
    **fields: Any,
) -> Response:
    event = caller.event(outcome, body, kind=kind, **fields)
    try:
        with hub.tracer.start_as_current_span("audit.append"):
            stored = await hub.audit.append_with_evidence(event, body)
    except AuditUnavailable:
        log.error("audit store unavailable; response withheld (trace %s)", caller.trace_id)
        caller.observe(hub, "ERROR", "-", "INTERNAL")
        retry = {"retry-after": str(Unavailable.retry_after)}
        message = "The hub cannot record this access now."
        return error_response(503, "INTERNAL", message, caller.trace_id, retry)
    caller.observe(hub, outcome, roots, refusal)
    headers = {**headers, EVIDENCE_HEADER: stored.evidence, RECORD_HEADER: stored.record.id}
    return Response(body, status_code=status, media_type="application/json", headers=headers)
