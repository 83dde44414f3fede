"""`POST /events/permits`: the Work Management System tells the hub a permit changed.

In order, for an event to be acknowledged (202):

1. the caller holds a hub token with `events:publish` (401 / 403 otherwise);
2. the body is `{"event": "<JWS>"}`, signed by the WMS's own key (the one its QR codes use),
   typed `permit-event+jwt`, recent, and consistent (`BAD_USER_INPUT` otherwise): a token alone
   does not let a stolen WMS client invent cancellations;
3. its `eventId` was never accepted before, by any instance (`CONFLICT`: a replay);
4. every cached copy of the permit is dropped, in every instance (shared generation counter,
   and a `permit-invalidated` entry of the shared-state stream for the local copies);
5. the webhook deliveries it owes are queued in the hub database;
6. it is recorded in the audit log;
7. it is published on the event bus (a `permit-event` entry of the shared-state stream), which
   hands it to the subscribers of every instance and wakes every instance's webhook worker.

If a step from 4 on fails, the replay marker is released and the WMS gets a 503, so that it
sends the event again: an event is never half-accepted. Every refusal is audited too, by the
responder of the GraphQL route (`hub.release`; docs/architecture.md).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import orjson
from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import Request
from starlette.responses import Response

from auth import AuthError
from connectors.events import EventBusUnavailable, EventRejected, verify_permit_event
from hub.components import Hub
from hub.gate import Caller, Refusal, auth_refusal, refusal
from hub.release import respond
from hub.transport import trace_id_of
from hub.webhooks import Recipient, enqueue_deliveries
from infra.kv import KeyValueUnavailable
from observability.audit import AuditUnavailable

__all__ = ["PUBLISH_SCOPE", "SUBSCRIBE_SCOPE", "events_post"]

log = logging.getLogger("hub.events")

PUBLISH_SCOPE = "events:publish"
SUBSCRIBE_SCOPE = "events:subscribe"


class _Refused(Exception):
    def __init__(self, refused: Refusal) -> None:
        super().__init__(refused.message)
        self.refusal = refused


async def events_post(request: Request) -> Response:
    """The steps above, in order; every refusal goes through the request path's responder."""
    hub: Hub = request.app.state.hub
    trace_id = trace_id_of(request.scope)
    address = request.client.host if request.client else None
    caller = Caller("event", trace_id, address, operation="permitEvent")
    try:
        try:
            principal = await hub.auth.authenticate(request.headers.get("authorization"))
        except AuthError as exc:  # Unavailable (Redis or the hub database): retry, same token
            raise _Refused(auth_refusal(exc, trace_id, token=True)) from None
        caller.principal = principal
        if PUBLISH_SCOPE not in principal.scopes:
            message = f"pushing permit events needs {PUBLISH_SCOPE}"
            raise _Refused(refusal(403, "FORBIDDEN", message, trace_id))
        signed = _signed_event(await request.body(), trace_id)
        try:
            change = await verify_permit_event(
                signed,
                hub.permits,
                now=dt.datetime.now(dt.UTC),
                max_age_seconds=hub.settings.event_max_age_seconds,
            )
        except EventRejected as exc:
            raise _Refused(refusal(400, "BAD_USER_INPUT", str(exc), trace_id)) from None
    except _Refused as early:
        return await respond(hub, caller, early.refusal)
    marker = f"event-seen:{change.event_id}"
    try:
        first = await hub.kv.incr(marker, 1, ttl_seconds=4 * hub.settings.event_max_age_seconds)
    except KeyValueUnavailable:
        return await respond(hub, caller, _unavailable(trace_id, change.permit_number))
    if first != 1:
        replay = refusal(
            409, "CONFLICT", "this event was accepted before (a replay)", trace_id,
            subjects=(change.permit_number,),
        )
        return await respond(hub, caller, replay)
    body = orjson.dumps({"accepted": change.event_id, "permitNumber": change.permit_number})
    try:
        await hub.permits.invalidate([change.permit_number])
        recipients = await _webhook_recipients(hub)
        await enqueue_deliveries(hub.engine, change, recipients)
        await hub.audit.append(
            caller.event(
                "OK", body,
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
        return await respond(hub, caller, _unavailable(trace_id, change.permit_number))
    hub.webhooks.wake()
    hub.metrics.events_accepted.labels(kind=change.kind.value).inc()
    return Response(body, status_code=202, media_type="application/json")


def _signed_event(raw: bytes, trace_id: str) -> str:
    try:
        payload: Any = orjson.loads(raw)
    except orjson.JSONDecodeError:
        message = "the body is not valid JSON"
        raise _Refused(refusal(400, "BAD_USER_INPUT", message, trace_id)) from None
    if not isinstance(payload, dict) or not isinstance(payload.get("event"), str):
        message = 'the body must be {"event": "<compact JWS>"}'
        raise _Refused(refusal(400, "BAD_USER_INPUT", message, trace_id))
    signed: str = payload["event"]
    return signed


async def _webhook_recipients(hub: Hub) -> list[Recipient]:
    """Enabled clients with a webhook URL and the scope to hear about permit changes."""
    return [
        Recipient(c.client_id, c.webhook_url)
        for c in await hub.auth.list_clients()
        if c.enabled and c.webhook_url and "events:subscribe" in c.scopes
    ]


def _unavailable(trace_id: str, subject: str) -> Refusal:
    return refusal(
        503, "UPSTREAM_UNAVAILABLE", "the hub cannot take events now; retry", trace_id,
        {"retry-after": "1"}, subjects=(subject,),
    )
