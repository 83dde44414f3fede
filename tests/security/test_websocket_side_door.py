"""Attack: GraphQL subscriptions over WebSocket as a side door around the POST path's checks.

Every `subscribe` message on `/graphql` (graphql-transport-ws) must pass the admission a POST
passes: trusted documents, the per-client request rate and cost budget (each subscribe is a
request), revocation and client disable (checked at each subscribe, not only at
`connection_init`), purpose, field policy and limits. Refusals come back as `error` messages
with the code HTTP would give, and are audited. A connection holds a bounded number of
subscriptions, and a client that talks before `connection_init` is closed with the protocol's
codes. The hub runs as a real server; clients connect over a real WebSocket.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from hub.documents import document_id_of
from tests.conftest import Simulators, _drop_prefix
from tests.hub.test_events import SUBSCRIBE, LiveHub, _live_hub, _message, _open

CLIENT = "exit-entry-wuhan"  # has events:subscribe
STATUS = "query($n: ID!) { permit(number: $n) { number status } }"


@asynccontextmanager
async def _hub(
    simulators: Simulators, database_url: str, tmp_path: Path, **overrides: Any
) -> AsyncIterator[LiveHub]:
    prefix = f"test:{uuid.uuid4().hex[:12]}:"
    try:
        async with _live_hub(simulators, database_url, tmp_path, prefix, **overrides) as hub:
            yield hub
    finally:
        await _drop_prefix(prefix)


async def _acked(hub: LiveHub, client_id: str = CLIENT) -> ClientConnection:
    ws = await _open(hub, client_id)
    assert (await _message(ws))["type"] == "connection_ack"
    return ws


async def _subscribe(ws: ClientConnection, op_id: str, payload: dict[str, Any]) -> None:
    await ws.send(orjson.dumps({"id": op_id, "type": "subscribe", "payload": payload}).decode())


async def _answer(ws: ClientConnection, op_id: str) -> dict[str, Any] | None:
    """The `error` sent for `op_id`, or None: the hub took it quietly (a ping is answered in
    order, so everything the hub said about `op_id` comes before its pong)."""
    await ws.send(orjson.dumps({"type": "ping"}).decode())
    error = None
    while (message := await _message(ws))["type"] != "pong":
        if message.get("id") == op_id and message["type"] == "error":
            error = message
    return error


async def _error(ws: ClientConnection, op_id: str, payload: dict[str, Any]) -> dict[str, Any]:
    await _subscribe(ws, op_id, payload)
    answer = await _answer(ws, op_id)
    assert answer is not None, f"subscription {op_id} was admitted"
    error: dict[str, Any] = answer["payload"][0]
    return error


async def _post(hub: LiveHub, body: dict[str, Any], client_id: str = CLIENT) -> Any:
    return await hub.http.post(
        hub.url + "/graphql", json=body,
        headers={
            "authorization": f"Bearer {await hub.token(client_id)}",
            "x-purpose-of-use": "residence-permit-check",
        },
    )


async def _closed_with(ws: ClientConnection) -> int:
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            await _message(ws)
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code


# -- trusted documents ---------------------------------------------------------------------------


async def test_an_unregistered_subscription_is_refused_as_a_post_would_be(
    simulators: Simulators, database_url: str, tmp_path: Path
) -> None:
    async with _hub(simulators, database_url, tmp_path, trusted_documents="enforce") as hub:
        await hub.hub.documents.add(CLIENT, STATUS)
        ws = await _acked(hub)
        try:
            refused = await _error(ws, "crafted", {"query": SUBSCRIBE})
            await hub.hub.documents.add(CLIENT, SUBSCRIBE)
            by_id = {"documentId": "sha256:" + document_id_of(SUBSCRIBE)}
            await _subscribe(ws, "registered", by_id)
            admitted = await _answer(ws, "registered")
        finally:
            await ws.close()
        audited = [r for r in await hub.audit("subscription") if r.error_codes]
    assert refused["extensions"]["code"] == "FORBIDDEN"
    assert "trusted" in refused["message"]
    assert admitted is None
    assert [(r.outcome, r.error_codes) for r in audited] == [("DENIED", ("FORBIDDEN",))]


# -- the request rate and the cost budget --------------------------------------------------------


async def test_subscribes_count_against_the_request_rate_shared_with_post(
    simulators: Simulators, database_url: str, tmp_path: Path
) -> None:
    async with _hub(simulators, database_url, tmp_path, rate_limit_per_minute=2) as hub:
        ws = await _acked(hub)
        try:
            # 6 requests span at most two one-minute windows: at most 4 are within the rate.
            answers = []
            for n in range(6):
                await _subscribe(ws, f"s{n}", {"query": SUBSCRIBE})
                answers.append(await _answer(ws, f"s{n}"))
            post = await _post(hub, {"query": STATUS, "variables": {"n": "x"}})
        finally:
            await ws.close()
        audited = [r for r in await hub.audit("subscription") if r.error_codes]
    refused = answers[-1]
    assert refused is not None
    error = refused["payload"][0]
    assert error["extensions"]["code"] == "RATE_LIMITED"
    assert 1 <= error["extensions"]["retryAfter"] <= 60
    assert post.status_code == 429  # the subscribes spent the rate POST shares
    assert audited and {r.error_codes for r in audited} == {("RATE_LIMITED",)}


async def test_a_client_refused_over_post_is_refused_over_websocket(
    simulators: Simulators, database_url: str, tmp_path: Path
) -> None:
    async with _hub(simulators, database_url, tmp_path, rate_limit_per_minute=2) as hub:
        ws = await _acked(hub)
        try:
            posts = [await _post(hub, {"query": STATUS, "variables": {"n": "x"}}) for _ in range(6)]
            assert posts[-1].status_code == 429
            errors = [await _error(ws, f"s{n}", {"query": SUBSCRIBE}) for n in range(20)]
        finally:
            await ws.close()
    assert {e["extensions"]["code"] for e in errors} == {"RATE_LIMITED"}


async def test_a_subscription_is_charged_to_the_clients_cost_budget(
    simulators: Simulators, database_url: str, tmp_path: Path
) -> None:
    async with _hub(simulators, database_url, tmp_path, cost_budget_per_minute=1) as hub:
        ws = await _acked(hub)
        try:
            errors = [await _error(ws, f"s{n}", {"query": SUBSCRIBE}) for n in range(4)]
        finally:
            await ws.close()
    assert {e["extensions"]["code"] for e in errors} == {"RATE_LIMITED"}
    assert "budget" in errors[-1]["message"]
    assert errors[-1]["extensions"]["retryAfter"] >= 1


# -- revocation, disable, purpose, after connection_init ------------------------------------------


async def test_a_token_revoked_after_connection_init_starts_no_new_subscription(
    simulators: Simulators, database_url: str, tmp_path: Path
) -> None:
    async with _hub(simulators, database_url, tmp_path) as hub:
        ws = await _acked(hub)
        try:
            revoked = await hub.http.post(
                hub.url + "/oauth/revoke", data={"token": await hub.token(CLIENT)},
                auth=(CLIENT, hub.secrets[CLIENT]),
            )
            assert revoked.status_code == 200
            await _subscribe(ws, "after", {"query": SUBSCRIBE})
            error = (await _message(ws))["payload"][0]
            code = await _closed_with(ws)
        finally:
            await ws.close()
        audited = [r for r in await hub.audit("subscription") if r.error_codes]
    assert error["extensions"]["code"] == "UNAUTHENTICATED"
    assert code == 4401
    # The client is told UNAUTHENTICATED; the record also says why.
    assert [(r.outcome, set(r.error_codes)) for r in audited] == [
        ("DENIED", {"UNAUTHENTICATED", "TOKEN_REVOKED"})
    ]


async def test_a_client_disabled_after_connection_init_starts_no_new_subscription(
    simulators: Simulators, database_url: str, tmp_path: Path
) -> None:
    async with _hub(simulators, database_url, tmp_path) as hub:
        ws = await _acked(hub)
        try:
            await hub.hub.auth.disable_client(CLIENT)
            await _subscribe(ws, "after", {"query": SUBSCRIBE})
            error = (await _message(ws))["payload"][0]
            code = await _closed_with(ws)
        finally:
            await ws.close()
    assert error["extensions"]["code"] == "UNAUTHENTICATED"
    assert code == 4401


async def test_a_purpose_withdrawn_after_connection_init_starts_no_new_subscription(
    simulators: Simulators, database_url: str, tmp_path: Path
) -> None:
    async with _hub(simulators, database_url, tmp_path) as hub:
        ws = await _acked(hub)
        try:
            await hub.hub.auth.add_purpose("border-control", ["permitStatusChanged"])
            await hub.hub.auth.set_purposes(CLIENT, ["border-control"])  # not the one in use
            error = await _error(ws, "after", {"query": SUBSCRIBE})
        finally:
            await ws.close()
    assert error["extensions"]["code"] == "PURPOSE_REQUIRED"  # as over HTTP
    assert error["extensions"]["purposes"] == ["border-control"]  # what it may use now


# -- bounds on one connection ---------------------------------------------------------------------


async def test_a_connection_holds_a_bounded_number_of_subscriptions(
    simulators: Simulators, database_url: str, tmp_path: Path
) -> None:
    async with _hub(
        simulators, database_url, tmp_path, max_subscriptions_per_connection=2
    ) as hub:
        ws = await _acked(hub)
        try:
            first = [await _error_or_none(ws, f"s{n}") for n in range(3)]
            await ws.send(orjson.dumps({"id": "s0", "type": "complete"}).decode())
            again = await _error_or_none(ws, "s3")
        finally:
            await ws.close()
    assert first[:2] == [None, None]
    assert first[2] is not None and first[2]["payload"][0]["extensions"]["code"] == "RATE_LIMITED"
    assert again is None  # one completed: room for another


async def _error_or_none(ws: ClientConnection, op_id: str) -> dict[str, Any] | None:
    await _subscribe(ws, op_id, {"query": SUBSCRIBE})
    return await _answer(ws, op_id)


async def _raw(hub: LiveHub) -> ClientConnection:
    return await connect(
        hub.url.replace("http://", "ws://") + "/graphql",
        subprotocols=[Subprotocol("graphql-transport-ws")],
    )


async def test_talking_before_connection_init_closes_the_connection(
    simulators: Simulators, database_url: str, tmp_path: Path
) -> None:
    async with _hub(simulators, database_url, tmp_path) as hub:
        early = await _raw(hub)
        await _subscribe(early, "1", {"query": SUBSCRIBE})
        binary = await _raw(hub)
        await binary.send(b"\x00\x01")
        chatty = await _raw(hub)
        for _ in range(50):
            await chatty.send(orjson.dumps({"type": "ping"}).decode())
        twice = await _acked(hub)
        await twice.send(orjson.dumps({"type": "connection_init"}).decode())
        codes = [await _closed_with(ws) for ws in (early, binary, chatty, twice)]
    assert codes == [4401, 4400, 4429, 4429]
