"""GraphQL subscriptions over WebSocket, `graphql-transport-ws` protocol (enisdenjo/graphql-ws).

    client                                   hub
    connection_init {payload: {Authorization, X-Purpose-Of-Use, X-Case-Reference}}
                                             connection_ack   (or close 4403, audited)
    subscribe {id, payload: {query | documentId, ...}}
                                             the POST path's admission, each time: token,
                                             revocation and client disable, purpose, request
                                             rate, trusted documents, limits, field policy,
                                             identifier arguments, cost budget (a refusal is
                                             an `error` message with the code HTTP would
                                             give, audited; a dead token also closes 4401)
                                             next {id, payload} per event, each audited first
    complete {id}                            (either side)
    ping / pong                              (either side)

Each `subscribe` is a request like a POST: it passes the same gate (`hub.gate.admit`), counts
against the client's request rate and cost budget, shared through Redis with the HTTP route,
and its refusals are recorded by the same responder (`hub.release.refuse`), so a WebSocket is
never a way around a refusal (docs/architecture.md). A connection holds at most
`HUB_MAX_SUBSCRIPTIONS_PER_CONNECTION` subscriptions at once. Before `connection_init` only
pings are answered, a few of them: a subscribe then closes 4401, anything else 4400, too
many messages 4429, no `connection_init` within 10 s 4408.

The bearer token, purpose and case reference may also come as headers of the upgrade request (a
browser cannot set them, so the `connection_init` payload is the usual place). A purpose marked
`needs_officer` (the demo's `investigation`) needs an officer's token and an
`X-Case-Reference`, as on POST /graphql: checked at `connection_init` with the purpose (close
4403, audited with OFFICER_REQUIRED or CASE_REFERENCE_REQUIRED) and again at each `subscribe`;
the case is recorded in the audit record of the subscription and of each of its events. A
person's token (the e-SSC app, `self:subscribe`) hears only their own permits' events.

The token is checked again before every event: a revoked or expired token ends the connection
with 4401, a scope or purpose that no longer allows the subscription with 4403, so a
long-lived socket never outlives its authorization; when the revocation status cannot be read
(this instance's replica of the denylist is staler than `HUB_SHARED_STATE_MAX_STALENESS`, or
the hub database is down) the connection ends with 1013, "try again later". Events come from
the shared-state stream: an instance that lost Redis for a moment reads the ones it missed, so
its subscribers miss none. No audit, no data: an event whose audit record cannot be written is
not sent, and the subscription ends with an INTERNAL error.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Mapping
from typing import Any

import orjson
from graphql import ExecutionResult
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from auth import CASE_HEADER, PURPOSE_HEADER, AuthError, TokenClaims, case_reference_of
from auth.errors import Unavailable
from hub.components import Hub
from hub.gate import STATUS, Caller, InputRefused, Refusal, admit
from hub.release import refuse
from hub.transport import trace_id_of
from observability.audit import AuditEvent, AuditUnavailable
from schema import GraphQLOutcome
from schema.pipeline import Subscription
from schema.policy import allowed

__all__ = ["PROTOCOL", "graphql_ws"]

log = logging.getLogger("hub.subscriptions")

PROTOCOL = "graphql-transport-ws"
INIT_TIMEOUT_SECONDS = 10.0
MAX_MESSAGES_BEFORE_INIT = 4  # pings a client may send before connection_init
MAX_MESSAGE_BYTES = 64 * 1024
TRY_AGAIN_LATER = 1013  # RFC 6455 close code: the revocation status cannot be read now
MAX_ID_CHARS = 128


class _Close(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason


def _header(mapping: Mapping[str, Any], name: str) -> str | None:
    for key, value in mapping.items():
        if isinstance(key, str) and key.lower() == name.lower() and isinstance(value, str):
            return value
    return None


class _Connection:
    def __init__(self, websocket: WebSocket, hub: Hub) -> None:
        self.ws = websocket
        self.hub = hub
        self.trace_id = trace_id_of(websocket.scope)
        self.principal: TokenClaims | None = None
        self.token: str | None = None
        self.purpose_header: str | None = None
        self.purpose: str | None = None
        self.case_header: str | None = None
        self.case_reference: str | None = None
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.send_lock = asyncio.Lock()

    async def send(self, message: dict[str, Any]) -> None:
        async with self.send_lock:
            await self.ws.send_text(orjson.dumps(message).decode())

    async def receive(self) -> dict[str, Any]:
        received = await self.ws.receive()
        if received["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(received.get("code", 1000), received.get("reason"))
        raw = received.get("text")
        if raw is None:
            raise _Close(4400, "graphql-transport-ws messages are text")
        if len(raw) > MAX_MESSAGE_BYTES:
            raise _Close(4400, "message too large")
        try:
            message = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise _Close(4400, "invalid JSON") from None
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            raise _Close(4400, "invalid message")
        return message

    # -- connection_init -----------------------------------------------------------------------

    async def initialise(self) -> None:
        try:
            async with asyncio.timeout(INIT_TIMEOUT_SECONDS):
                message = await self.until_init()
        except TimeoutError:
            raise _Close(4408, "connection initialisation timeout") from None
        payload = message.get("payload") or {}
        if not isinstance(payload, dict):
            raise _Close(4400, "invalid connection_init payload")
        headers = self.ws.headers
        authorization = _header(payload, "authorization") or headers.get("authorization")
        purpose = _header(payload, PURPOSE_HEADER) or headers.get(PURPOSE_HEADER)
        case = _header(payload, CASE_HEADER) or headers.get(CASE_HEADER)
        try:
            self.principal = await self.hub.auth.authenticate(authorization)
            self.purpose = self.hub.auth.purpose_of_use(self.principal, purpose)
            self.case_reference = case_reference_of(self.principal, self.purpose, case)
        except Unavailable as exc:
            await self.audit_refusal(exc.code, "ERROR")
            raise _Close(TRY_AGAIN_LATER, "try again later") from None
        except AuthError as exc:
            await self.audit_refusal(exc.code, "DENIED")
            raise _Close(4403, "forbidden") from None
        self.token, self.purpose_header, self.case_header = authorization, purpose, case
        await self.send({"type": "connection_ack"})

    async def until_init(self) -> dict[str, Any]:
        """The connection_init message; a few pings before it are answered, nothing else."""
        for _ in range(MAX_MESSAGES_BEFORE_INIT + 1):
            message = await self.receive()
            kind = message["type"]
            if kind == "connection_init":
                return message
            if kind in ("subscribe", "complete"):
                raise _Close(4401, "unauthorized")
            if kind not in ("ping", "pong"):
                raise _Close(4400, f"unexpected message type {kind!r}")
            if kind == "ping":
                await self.send({"type": "pong"})
        raise _Close(4429, "too many messages before connection_init")

    # -- messages ------------------------------------------------------------------------------

    async def serve(self) -> None:
        while True:
            message = await self.receive()
            kind = message["type"]
            if kind == "ping":
                await self.send({"type": "pong"})
            elif kind == "pong":
                continue
            elif kind == "subscribe":
                await self.start(message)
            elif kind == "complete":
                task = self.tasks.pop(str(message.get("id")), None)
                if task is not None:
                    task.cancel()
            elif kind == "connection_init":
                raise _Close(4429, "too many initialisation requests")
            else:
                raise _Close(4400, f"unexpected message type {kind!r}")

    async def start(self, message: dict[str, Any]) -> None:
        op_id, payload = message.get("id"), message.get("payload")
        if (
            not isinstance(op_id, str)
            or not 0 < len(op_id) <= MAX_ID_CHARS
            or not isinstance(payload, dict)
        ):
            raise _Close(4400, "subscribe needs an id and a payload")
        if op_id in self.tasks:
            raise _Close(4409, f"subscriber for {op_id} already exists")
        caller = self.caller()
        admitted = await self.admit(op_id, payload, caller)
        if admitted is None:
            return
        try:
            await self.audit(admitted, "OK", b"", operation="subscribe")
        except AuditUnavailable:  # no record, no subscription
            log.error("audit store unavailable; subscription refused (trace %s)", self.trace_id)
            await _discard(admitted)
            await self.send_errors(op_id, "INTERNAL", "The hub cannot record this access now.")
            return
        caller.observe(self.hub, "OK", ",".join(admitted.fields), None)
        self.tasks[op_id] = asyncio.create_task(self.stream(op_id, admitted))

    async def admit(
        self, op_id: str, payload: dict[str, Any], caller: Caller
    ) -> Subscription | None:
        """The gate of the POST route (`hub.gate.admit`), then the stream; None: refused (and
        told, and audited)."""
        admitted = await admit(
            self.hub, caller, self.token, self.purpose_header, lambda: self.room(payload),
            subscription=True, case=self.case_header,
        )
        # Its scopes and purposes as the registry has them now, for the records of its events.
        self.principal, self.purpose = caller.principal, caller.purpose
        self.case_reference = caller.case_reference
        if isinstance(admitted, Refusal):
            await self.refuse(op_id, admitted, caller)
            return None
        assert admitted.admission is not None  # introspection is refused over WebSocket
        principal = admitted.principal
        started = await self.hub.graphql.subscribe(
            admitted.admission, admitted.request, trace_id=self.trace_id, today=dt.date.today(),
            person=principal.actor if principal.actor_kind == "SUBJECT" else None,
        )
        if isinstance(started, GraphQLOutcome):  # the resolver failed before its first event
            await self.refuse(op_id, _failed(started), caller)
            return None
        return started

    async def room(self, payload: dict[str, Any]) -> dict[str, Any]:
        """The payload, if this connection has room for one more subscription."""
        limit = self.hub.settings.max_subscriptions_per_connection
        if len(self.tasks) >= limit:
            message = (
                f"at most {limit} subscriptions at once on one connection; complete one first"
            )
            raise InputRefused(429, "RATE_LIMITED", message)
        return payload

    async def refuse(self, op_id: str, refusal: Refusal, caller: Caller) -> None:
        """Recorded, then told as an `error` message; a token that no longer authenticates
        ends the connection (4401), as before an event; one whose status cannot be read now
        (Redis or the hub database down) ends it with 1013."""
        await refuse(self.hub, caller, refusal)
        await self.send({"id": op_id, "type": "error", "payload": list(refusal.errors)})
        if refusal.token_refused and refusal.status == 503:
            raise _Close(TRY_AGAIN_LATER, "try again later")
        if refusal.token_refused:
            raise _Close(4401, "the token expired or was revoked")

    async def stream(self, op_id: str, subscription: Subscription) -> None:
        try:
            async for result in subscription.results:
                await self.still_authorized(subscription)
                if not await self.release(op_id, subscription, result):
                    return
            await self.send({"id": op_id, "type": "complete"})
        except _Close as close:
            await self.ws.close(close.code, close.reason)
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            self.tasks.pop(op_id, None)
            await _discard(subscription)

    async def still_authorized(self, subscription: Subscription) -> None:
        """Before each event: the token, its scope, and the purpose the subscription was
        admitted for, which must still be the client's and still cover what it runs (a purpose
        narrowed or withdrawn ends the feed, as a scope withdrawn does)."""
        try:
            principal = await self.hub.auth.authenticate(self.token)
        except Unavailable:
            # Fails closed, but says "retry": the token may well still be good.
            raise _Close(TRY_AGAIN_LATER, "try again later") from None
        except AuthError:
            raise _Close(4401, "the token expired or was revoked") from None
        runs = {f.partition(".")[2] for f in subscription.fields if f.startswith("Subscription.")}
        if not all(allowed("Subscription", name, principal.scopes) for name in runs):
            raise _Close(4403, "forbidden")
        purpose = self.purpose
        if purpose not in principal.purposes or not runs <= principal.operations_of(purpose):
            raise _Close(4403, "forbidden")

    async def release(
        self, op_id: str, subscription: Subscription, result: ExecutionResult
    ) -> bool:
        """Audit, then send one event; False (and an error sent) if it cannot be audited."""
        outcome = self.hub.graphql.event_outcome(subscription, result, self.trace_id)
        body = orjson.dumps(outcome.body)
        try:
            await self.audit(subscription, outcome.outcome, body, outcome=outcome)
        except AuditUnavailable:
            log.error("audit store unavailable; event withheld (trace %s)", self.trace_id)
            await self.send_errors(op_id, "INTERNAL", "The hub cannot record this access now.")
            return False
        await self.send({"id": op_id, "type": "next", "payload": outcome.body})
        self.hub.metrics.subscription_events.inc()
        return True

    # -- the audit log -------------------------------------------------------------------------

    async def send_errors(self, op_id: str, code: str, message: str) -> None:
        error = {"message": message, "extensions": {"code": code, "traceId": self.trace_id}}
        await self.send({"id": op_id, "type": "error", "payload": [error]})

    async def audit(
        self,
        subscription: Subscription,
        result: str,
        body: bytes,
        *,
        operation: str | None = None,
        outcome: GraphQLOutcome | None = None,
    ) -> None:
        await self.hub.audit.append(
            self.event(
                result, body,
                operation=operation or subscription.operation_name,
                document_hash=subscription.prepared.text_hash,
                fields=tuple(subscription.fields),
                subjects=tuple(outcome.subjects) if outcome else (),
                error_codes=tuple(outcome.error_codes) if outcome else (),
            )
        )

    async def audit_refusal(self, code: str, result: str) -> None:
        try:
            await self.hub.audit.append(self.event(result, b"", error_codes=(code,)))
        except AuditUnavailable:
            log.error("audit store unavailable; refusal not recorded (trace %s)", self.trace_id)

    def caller(self) -> Caller:
        """This connection's caller as it stands, for one request's admission and records."""
        client = self.ws.client
        return Caller(
            "subscription", self.trace_id, client.host if client else None, self.principal,
            self.purpose, operation="subscribe", case_reference=self.case_reference,
        )

    def event(self, outcome: str, body: bytes, **fields: Any) -> AuditEvent:
        return self.caller().event(outcome, body, **fields)

    async def stop(self) -> None:
        for task in list(self.tasks.values()):
            task.cancel()
        for task in list(self.tasks.values()):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


def _failed(outcome: GraphQLOutcome) -> Refusal:
    """A subscription whose resolver failed before its first event, as a refusal: DENIED
    with the refused subjects when it named rows outside the jurisdiction (`schema.rows`)."""
    errors = tuple(outcome.body.get("errors") or ())
    code = outcome.error_codes[0] if outcome.error_codes else "INTERNAL"
    return Refusal(
        STATUS.get(code, 500), code, errors[0]["message"] if errors else "",
        "DENIED" if outcome.outcome == "DENIED" else "ERROR", errors,
        error_codes=tuple(outcome.error_codes), document_hash=outcome.document_hash,
        operation_name=outcome.operation_name, subjects=tuple(outcome.subjects),
        denied=tuple(outcome.denied),
    )


async def _discard(subscription: Subscription) -> None:
    """Close a subscription's stream (the resolver's generator), started or not."""
    aclose = getattr(subscription.results, "aclose", None)
    if aclose is not None:
        with contextlib.suppress(Exception):
            await aclose()


async def graphql_ws(websocket: WebSocket) -> None:
    """The WebSocket side of /graphql."""
    if PROTOCOL not in websocket.scope.get("subprotocols", []):
        await websocket.close(4406, "subprotocol not acceptable")
        return
    await websocket.accept(subprotocol=PROTOCOL)
    connection = _Connection(websocket, websocket.app.state.hub)
    try:
        await connection.initialise()
        await connection.serve()
    except _Close as close:
        if websocket.application_state is not WebSocketState.DISCONNECTED:
            with contextlib.suppress(RuntimeError):
                await websocket.close(close.code, close.reason)
    except WebSocketDisconnect:
        pass
    finally:
        await connection.stop()
