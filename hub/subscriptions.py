"""GraphQL subscriptions over WebSocket, `graphql-transport-ws` protocol (enisdenjo/graphql-ws).

    client                                   hub
    connection_init {payload: {Authorization, X-Purpose-Of-Use}}
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

Each `subscribe` is a request like a POST: it counts against the client's request rate and
cost budget, shared through Redis with the HTTP route (`hub.admission`), so a WebSocket is
never a way around a refusal. A connection holds at most
`HUB_MAX_SUBSCRIPTIONS_PER_CONNECTION` subscriptions at once. Before `connection_init` only
pings are answered, a few of them: a subscribe then closes 4401, anything else 4400, too
many messages 4429, no `connection_init` within 10 s 4408.

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
import time
from collections.abc import Mapping
from typing import Any, Literal, NoReturn

import orjson
from graphql import ExecutionResult
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from auth import PURPOSE_HEADER, AuthError, Principal
from auth.errors import Unavailable
from hub.accesses import access_event
from hub.admission import BadRequest, Shared, graphql_request_of, shared_checks
from hub.components import Hub
from hub.documents import DocumentRefused
from hub.transport import trace_id_of
from observability.audit import AuditEvent, AuditUnavailable
from schema import GraphQLOutcome, GraphQLRequest
from schema.pipeline import Subscription

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


def _outcome_of(status: int) -> Literal["DENIED", "ERROR"]:
    """The audit outcome of a refusal, as the HTTP route records it."""
    return "DENIED" if status in (401, 403) else "ERROR"


class _Connection:
    def __init__(self, websocket: WebSocket, hub: Hub) -> None:
        self.ws = websocket
        self.hub = hub
        self.trace_id = trace_id_of(websocket.scope)
        self.principal: Principal | None = None
        self.token: str | None = None
        self.purpose_header: str | None = None
        self.purpose: str | None = None
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
        try:
            self.principal = await self.hub.auth.authenticate(authorization)
            self.purpose = self.hub.auth.purpose_of_use(self.principal, purpose)
        except Unavailable as exc:
            await self.audit_refusal(exc.code, "ERROR")
            raise _Close(TRY_AGAIN_LATER, "try again later") from None
        except AuthError as exc:
            await self.audit_refusal(exc.code, "DENIED")
            raise _Close(4403, "forbidden") from None
        self.token, self.purpose_header = authorization, purpose
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
        started = time.perf_counter()
        admitted = await self.admit(op_id, payload, started)
        if admitted is None:
            return
        try:
            await self.audit(admitted, "OK", b"", operation="subscribe")
        except AuditUnavailable:  # no record, no subscription
            log.error("audit store unavailable; subscription refused (trace %s)", self.trace_id)
            await _discard(admitted)
            await self.send_errors(op_id, "INTERNAL", "The hub cannot record this access now.")
            return
        self.observe("OK", ",".join(admitted.fields), None, started)
        self.tasks[op_id] = asyncio.create_task(self.stream(op_id, admitted))

    async def admit(
        self, op_id: str, payload: dict[str, Any], started: float
    ) -> Subscription | None:
        """The POST route's admission, in its order (`hub.routes.graphql_post`); None: refused
        (and told, and audited). Revocation, rate and cost are one shared round trip."""
        try:
            principal = await self.hub.auth.identify(self.token)
        except AuthError as exc:
            await self.refuse_auth(op_id, exc, started)
        self.principal = principal  # its scopes and purposes as the registry has them now
        purpose_refused: AuthError | None = None
        try:
            self.purpose = self.hub.auth.purpose_of_use(principal, self.purpose_header)
        except AuthError as exc:
            purpose_refused = exc
        request: GraphQLRequest | None = None
        input_refused: tuple[int, str, str] | None = None
        if purpose_refused is None:
            request, input_refused = await self.read(principal, payload)
        if request is None:
            shared = await shared_checks(
                self.hub, principal, rate=purpose_refused is None, cost=None
            )
            if not await self.refuse_early(op_id, shared, purpose_refused, started):
                assert input_refused is not None
                await self.refuse_plain(op_id, *input_refused, started=started)
            return None
        admitted = await self.hub.graphql.subscribe(
            request, scopes=principal.scopes, trace_id=self.trace_id, today=dt.date.today()
        )
        cost = None
        if isinstance(admitted, Subscription):  # charged once, when the subscription starts
            limits = self.hub.graphql.limits
            variables = request.variables
            cost = limits.cost(admitted.prepared, request.operation_name, variables) or 0
        shared = await shared_checks(self.hub, principal, rate=True, cost=cost)
        refused = await self.refuse_early(op_id, shared, None, started)
        if isinstance(admitted, GraphQLOutcome):
            if not refused:
                await self.refuse(op_id, admitted, started)
            return None
        if not refused and shared.cost_retry_after is not None:
            await self.refuse(op_id, self.over_budget(admitted, shared.cost_retry_after), started)
            refused = True
        if refused:
            await _discard(admitted)
            return None
        return admitted

    async def read(
        self, principal: Principal, payload: dict[str, Any]
    ) -> tuple[GraphQLRequest | None, tuple[int, str, str] | None]:
        """The request to admit, or why not (status, code, message): room on this connection,
        trusted documents, the payload's form, as POST reads its body."""
        refused = self.over_limit()
        if refused is not None:
            return None, refused
        try:
            query = await self.hub.documents.resolve(principal.client_id, payload)
            return graphql_request_of(payload, query), None
        except DocumentRefused as exc:
            return None, (exc.status, exc.code, exc.message)
        except BadRequest as exc:
            return None, (400, "BAD_USER_INPUT", exc.message)

    def over_limit(self) -> tuple[int, str, str] | None:
        limit = self.hub.settings.max_subscriptions_per_connection
        if len(self.tasks) < limit:
            return None
        message = f"at most {limit} subscriptions at once on one connection; complete one first"
        return (429, "RATE_LIMITED", message)

    def over_budget(self, subscription: Subscription, retry_after: int) -> GraphQLOutcome:
        """As `GraphQLService.over_budget` tells it over HTTP (no headers here: retryAfter)."""
        message = f"the client's query cost budget is spent; retry in {retry_after} s"
        extensions = {"code": "RATE_LIMITED", "retryAfter": retry_after, "traceId": self.trace_id}
        return GraphQLOutcome(
            body={"errors": [{"message": message, "extensions": extensions}]},
            status=429,
            outcome="DENIED",
            document_hash=subscription.prepared.text_hash,
            operation_name=subscription.operation_name,
            error_codes=["RATE_LIMITED"],
        )

    async def stream(self, op_id: str, subscription: Subscription) -> None:
        try:
            async for result in subscription.results:
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
            await _discard(subscription)

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

    async def refuse_early(
        self, op_id: str, shared: Shared, purpose_refused: AuthError | None, started: float
    ) -> bool:
        """The refusals that come before the input is looked at, in the POST route's order."""
        if shared.revoked is not None:
            await self.refuse_auth(op_id, shared.revoked, started)
        if purpose_refused is not None:
            await self.refuse_plain(
                op_id, purpose_refused.status, purpose_refused.code,
                purpose_refused.description, started=started,
            )
            return True
        if shared.rate_retry_after is not None:
            retry_after = shared.rate_retry_after
            await self.refuse_plain(
                op_id, 429, "RATE_LIMITED",
                f"too many requests from this client; retry in {retry_after} s",
                started=started, retryAfter=retry_after,
            )
            return True
        return False

    async def refuse_auth(self, op_id: str, exc: AuthError, started: float) -> NoReturn:
        """A token that no longer authenticates ends the connection, as before an event; one
        whose status cannot be read now (Redis or the hub database down) ends it with 1013."""
        await self.refuse_plain(op_id, exc.status, exc.code, exc.description, started=started)
        if isinstance(exc, Unavailable):
            raise _Close(TRY_AGAIN_LATER, "try again later")
        raise _Close(4401, "the token expired or was revoked")

    async def refuse_plain(
        self, op_id: str, status: int, code: str, message: str, *, started: float,
        **extensions: Any,
    ) -> None:
        """A refusal before the document is admitted: told, audited, as `_refuse` over HTTP."""
        extensions = {"code": code, **extensions, "traceId": self.trace_id}
        outcome = GraphQLOutcome(
            body={"errors": [{"message": message, "extensions": extensions}]},
            status=status,
            outcome=_outcome_of(status),
            error_codes=[code],
        )
        await self.refuse(op_id, outcome, started)

    async def refuse(self, op_id: str, outcome: GraphQLOutcome, started: float) -> None:
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
        code = outcome.error_codes[0] if outcome.error_codes else None
        self.observe(outcome.outcome, "-", code, started)
        await self.send({"id": op_id, "type": "error", "payload": outcome.body["errors"]})

    def observe(self, outcome: str, root_fields: str, refusal: str | None, started: float) -> None:
        self.hub.metrics.observe(
            client=self.principal.client_id if self.principal else None,
            root_fields=root_fields, outcome=outcome,
            seconds=time.perf_counter() - started, refusal=refusal,
        )

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
