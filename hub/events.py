"""`POST /events/permits`: the Work Management System tells the hub a permit changed.

In order, for an event to be acknowledged (202):

1. the caller holds a hub token with `events:publish` (401 / 403 otherwise);
2. the body is `{"event": "<JWS>"}`, signed by the WMS's own key (the one its QR codes use),
   typed `permit-event+jwt`, recent, and consistent (`BAD_USER_INPUT` otherwise): a token alone
   does not let a stolen WMS client invent cancellations;
3. its `eventId` was never accepted before, by any instance (`CONFLICT`: a replay);
4. every cached copy of the permit is dropped, in every instance (shared generation counter);
5. the webhook deliveries it owes are queued in the hub database;
6. it is recorded in the audit log;
7. it is published on the event bus, which hands it to the subscribers of every instance.

If a step from 4 on fails, the replay marker is released and the WMS gets a 503, so that it
sends the event again: an event is never half-accepted. Every refusal is audited too.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import orjson
from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import Request
from starlette.responses import Response

from auth import AuthError, Principal
from auth.errors import Unavailable
from connectors.events import EventBusUnavailable, EventRejected, verify_permit_event
from hub.accesses import access_event
from hub.components import Hub
from hub.responses import JSONResponse, error_response
from hub.transport import trace_id_of
from hub.webhooks import Recipient, enqueue_deliveries
from infra.kv import KeyValueUnavailable
from observability.audit import AuditEvent, AuditUnavailable

__all__ = ["PUBLISH_SCOPE", "SUBSCRIBE_SCOPE", "events_post"]

log = logging.getLogger("hub.events")

PUBLISH_SCOPE = "events:publish"
SUBSCRIBE_SCOPE = "events:subscribe"


class _Refused(Exception):
    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers


async def events_post(request: Request) -> Response:
    hub: Hub = request.app.state.hub
    trace_id = trace_id_of(request.scope)
    principal: Principal | None = None
    try:
        try:
            principal = await hub.auth.authenticate(request.headers.get("authorization"))
        except AuthError as exc:
            challenge = {"www-authenticate": exc.www_authenticate()} if exc.status == 401 else None
            if isinstance(exc, Unavailable):  # Redis or the hub database: retry, same token
                challenge = {"retry-after": str(exc.retry_after)}
            raise _Refused(exc.status, exc.code, exc.description, challenge) from None
        if PUBLISH_SCOPE not in principal.scopes:
            raise _Refused(403, "FORBIDDEN", f"pushing permit events needs {PUBLISH_SCOPE}")
        signed = _signed_event(await request.body())
        try:
            change = await verify_permit_event(
                signed,
                hub.permits,
                now=dt.datetime.now(dt.UTC),
                max_age_seconds=hub.settings.event_max_age_seconds,
            )
        except EventRejected as exc:
            raise _Refused(400, "BAD_USER_INPUT", str(exc)) from None
    except _Refused as early:
        return await _refuse(request, hub, principal, trace_id, early, subject=None)
    marker = f"event-seen:{change.event_id}"
    try:
        first = await hub.kv.incr(marker, 1, ttl_seconds=4 * hub.settings.event_max_age_seconds)
    except KeyValueUnavailable:
        return await _unavailable(request, hub, principal, trace_id, change.permit_number)
    if first != 1:
        replay = _Refused(409, "CONFLICT", "this event was accepted before (a replay)")
        return await _refuse(request, hub, principal, trace_id, replay, change.permit_number)
    body = orjson.dumps({"accepted": change.event_id, "permitNumber": change.permit_number})
    try:
        await hub.permits.invalidate([change.permit_number])
        recipients = await _webhook_recipients(hub)
        await enqueue_deliveries(hub.engine, change, recipients)
        await hub.audit.append(
            _audit_event(
                request, principal, trace_id, "OK", body,
                operation=f"permitEvent.{change.kind.value}",
                subjects=(change.permit_number,),
                fields=tuple(f"webhook:{r.client_id}" for r in recipients),
            )
        )
        await hub.bus.publish(change)
    except (KeyValueUnavailable, SQLAlchemyError, AuditUnavailable, EventBusUnavailable) as exc:
        log.error("event %s not accepted: %s", change.event_id, type(exc).__name__)
        try:
            await hub.kv.delete(marker)
        except KeyValueUnavailable:
            log.error("replay marker of %s kept; its retry will be refused", change.event_id)
        return await _unavailable(request, hub, principal, trace_id, change.permit_number)
    hub.webhooks.wake()
    hub.metrics.events_accepted.labels(kind=change.kind.value).inc()
    return Response(body, status_code=202, media_type="application/json")


def _signed_event(raw: bytes) -> str:
    try:
        payload: Any = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise _Refused(400, "BAD_USER_INPUT", "the body is not valid JSON") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("event"), str):
        raise _Refused(400, "BAD_USER_INPUT", 'the body must be {"event": "<compact JWS>"}')
    signed: str = payload["event"]
    return signed


async def _webhook_recipients(hub: Hub) -> list[Recipient]:
    """Enabled clients with a webhook URL and the scope to hear about permit changes."""
    return [
        Recipient(c.client_id, c.webhook_url)
        for c in await hub.auth.list_clients()
        if c.enabled and c.webhook_url and "events:subscribe" in c.scopes
    ]


def _audit_event(
    request: Request,
    principal: Principal | None,
    trace_id: str,
    outcome: str,
    body: bytes,
    **fields: Any,
) -> AuditEvent:
    address = request.client.host if request.client else None
    return access_event(
        "event", outcome, principal=principal, trace_id=trace_id, client_address=address,
        body=body, **fields,
    )


async def _refuse(
    request: Request,
    hub: Hub,
    principal: Principal | None,
    trace_id: str,
    refused: _Refused,
    subject: str | None,
) -> JSONResponse:
    response = error_response(
        refused.status, refused.code, refused.message, trace_id, refused.headers
    )
    outcome = "DENIED" if refused.status in (401, 403) else "ERROR"
    event = _audit_event(
        request, principal, trace_id, outcome, bytes(response.body),
        operation="permitEvent", error_codes=(refused.code,),
        subjects=(subject,) if subject else (),
    )
    try:
        await hub.audit.append(event)
    except AuditUnavailable:
        log.error("audit store unavailable; event refusal not recorded (trace %s)", trace_id)
    hub.metrics.events_refused.labels(code=refused.code).inc()
    return response


async def _unavailable(
    request: Request, hub: Hub, principal: Principal | None, trace_id: str, subject: str
) -> JSONResponse:
    refused = _Refused(503, "UPSTREAM_UNAVAILABLE", "the hub cannot take events now; retry")
    response = await _refuse(request, hub, principal, trace_id, refused, subject)
    response.headers["retry-after"] = "1"
    return response
