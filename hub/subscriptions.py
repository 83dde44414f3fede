"""GraphQL subscriptions over WebSocket, `graphql-transport-ws` protocol (enisdenjo/graphql-ws).

    client                                   hub
    connection_init {payload: {Authorization, X-Purpose-Of-Use}}
                                             connection_ack   (or close 4403, audited)
    subscribe {id, payload: {query, ...}}    the POST path's checks: limits, field policy
                                             (FORBIDDEN as an `error` message, audited),
                                             identifier arguments
                                             next {id, payload} per event, each audited first
    complete {id}                            (either side)
    ping / pong                              (either side)

The bearer token and purpose may also come as headers of the upgrade request (a browser
cannot set them, so the `connection_init` payload is the usual place). The token is checked
again before every event: a revoked or expired token ends the connection with 4401, so a
long-lived socket never outlives its authorization; when the revocation status cannot be read
(Redis or the hub database down) the connection ends with 1013, "try again later". No audit,
no data: an event whose audit record cannot be written is not sent, and the subscription ends
with an INTERNAL error.
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

from auth import PURPOSE_HEADER, AuthError, Principal
from auth.errors import Unavailable
from hub.accesses import access_event
from hub.components import Hub
from hub.transport import trace_id_of
from observability.audit import AuditEvent, AuditUnavailable
from schema import GraphQLOutcome, GraphQLRequest
from schema.pipeline import Subscription

__all__ = ["PROTOCOL", "graphql_ws"]

log = logging.getLogger("hub.subscriptions")

PROTOCOL = "graphql-transport-ws"
INIT_TIMEOUT_SECONDS = 10.0
MAX_SUBSCRIPTIONS = 20
MAX_MESSAGE_BYTES = 64 * 1024
TRY_AGAIN_LATER = 1013  # RFC 6455 close code: the revocation status cannot be read now


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
        self.principal: Principal | None = None
        self.token: str | None = None
        self.purpose: str | None = None
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.send_lock = asyncio.Lock()

    async def send(self, message: dict[str, Any]) -> None:
        async with self.send_lock:
            await self.ws.send_text(orjson.dumps(message).decode())

    async def receive(self) -> dict[str, Any]:
        raw = await self.ws.receive_text()
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
            message = await asyncio.wait_for(self.receive(), INIT_TIMEOUT_SECONDS)
        except TimeoutError:
            raise _Close(4408, "connection initialisation timeout") from None
        if message["type"] != "connection_init":
            raise _Close(4401, "unauthorized")
        payload = message.get("payload") or {}
        if not isinstance(payload, dict):
            raise _Close(4400, "invalid connection_init payload")
        headers = self.ws.headers
        authorization = _header(payload, "authorization") or headers.get("authorization")
        purpose = _header(payload, PURPOSE_HEADER) or headers.get(PURPOSE_HEADER)
        try:
            self.principal = await self.hub.auth.authenticate(authorization)
            self.purpose = self.hub.auth.purpose_of_use(self.principal, purpose)
        except Unavailable as exc:
            await self.audit_refusal(exc.code, "ERROR")
            raise _Close(TRY_AGAIN_LATER, "try again later") from None
        except AuthError as exc:
            await self.audit_refusal(exc.code, "DENIED")
            raise _Close(4403, "forbidden") from None
        self.token = authorization
        await self.send({"type": "connection_ack"})

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
        if not isinstance(op_id, str) or not op_id or not isinstance(payload, dict):
            raise _Close(4400, "subscribe needs an id and a payload")
        if op_id in self.tasks:
            raise _Close(4409, f"subscriber for {op_id} already exists")
        query, variables = payload.get("query"), payload.get("variables")
        operation = payload.get("operationName")
        if (
            not isinstance(query, str)
            or not isinstance(variables, dict | None)
            or not isinstance(operation, str | None)
        ):
            raise _Close(4400, "subscribe payload needs a query string")
        if len(self.tasks) >= MAX_SUBSCRIPTIONS:
            await self.send_errors(op_id, "RATE_LIMITED", f"at most {MAX_SUBSCRIPTIONS} at once")
            return
        assert self.principal is not None
        admitted = await self.hub.graphql.subscribe(
            GraphQLRequest(query, variables, operation),
            scopes=self.principal.scopes,
            trace_id=self.trace_id,
            today=dt.date.today(),
        )
        if isinstance(admitted, GraphQLOutcome):
            await self.refuse(op_id, admitted)
            return
        await self.audit(admitted, "OK", b"", operation="subscribe")
        self.tasks[op_id] = asyncio.create_task(self.stream(op_id, admitted))

    async def stream(self, op_id: str, subscription: Subscription) -> None:
        results = subscription.results
        try:
            async for result in results:
                await self.still_authorized()
                if not await self.release(op_id, subscription, result):
                    return
            await self.send({"id": op_id, "type": "complete"})
        except _Close as close:
            await self.ws.close(close.code, close.reason)
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            self.tasks.pop(op_id, None)
            aclose = getattr(results, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception):
                    await aclose()

    async def still_authorized(self) -> None:
        try:
            principal = await self.hub.auth.authenticate(self.token)
        except Unavailable:
            # Fails closed, but says "retry": the token may well still be good.
            raise _Close(TRY_AGAIN_LATER, "try again later") from None
        except AuthError:
            raise _Close(4401, "the token expired or was revoked") from None
        if "events:subscribe" not in principal.scopes:
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

    # -- refusals and the audit log -------------------------------------------------------------

    async def refuse(self, op_id: str, outcome: GraphQLOutcome) -> None:
        body = orjson.dumps(outcome.body)
        try:
            await self.hub.audit.append(
                self.event(
                    outcome.outcome, body,
                    operation=outcome.operation_name or "subscribe",
                    document_hash=outcome.document_hash,
                    denied=tuple(outcome.denied),
                    error_codes=tuple(outcome.error_codes),
                )
            )
        except AuditUnavailable:
            log.error("audit store unavailable; refusal not recorded (trace %s)", self.trace_id)
        await self.send({"id": op_id, "type": "error", "payload": outcome.body["errors"]})

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

    def event(self, outcome: str, body: bytes, **fields: Any) -> AuditEvent:
        client = self.ws.client
        return access_event(
            "subscription", outcome, principal=self.principal, trace_id=self.trace_id,
            client_address=client.host if client else None, body=body, purpose=self.purpose,
            **fields,
        )

    async def stop(self) -> None:
        for task in list(self.tasks.values()):
            task.cancel()
        for task in list(self.tasks.values()):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


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
