"""Issue 5, item 4: permit change events from the WMS, pushed to every agency that cares.

The hub runs as a real server here (the WMS simulator pushes to it over HTTP, subscribers
connect over WebSocket). Events change the session's simulated WMS, so each test changes
permits of its own: a slice of the VALID permits no other test reads.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from connectors.records import Permit, PermitMedium
from hub.app import create_app
from hub.components import Hub
from hub.demo_clients import seed_demo_clients
from hub.settings import Settings
from hub.tables import webhook_deliveries
from hub.webhooks import EVENT_URI
from observability.audit import AuditFilter
from simulators import generate_signing_key
from tests.conftest import Simulators, _drop_prefix, hub_settings, purpose_for
from tests.services import REDIS_URL, redis_server, tcp_proxy
from tests.simulators.servers import serve

STATUS = "query($n: ID!) { permit(number: $n) { number status medium validUntil } }"
SUBSCRIBE = """subscription($n: [ID!]) {
  permitStatusChanged(numbers: $n) { permitNumber kind status at } }"""
_SLICES = {
    "cancel": (0, 1), "subscribe": (1, 2), "replay": (2, 3), "legacy": (0, 1),
    "webhook": (3, 4), "two": (4, 5), "filter": (5, 7), "revoked": (7, 8), "purpose": (8, 9),
    "outage": (9, 10),
}


def _fresh(simulators: Simulators, test: str, *, legacy: bool = False) -> list[Permit]:
    dataset = simulators.dataset
    samples = set(dataset.samples.values())
    medium = PermitMedium.PHYSICAL_CARD if legacy else PermitMedium.ELECTRONIC
    fresh = sorted(
        (
            p for p in dataset.permits.values()
            if p.is_valid_on(dataset.today) and p.number not in samples and p.medium is medium
        ),
        key=lambda p: p.number,
    )[100:]  # far from the sorted()[:100] other tests read
    start, stop = _SLICES[test]
    return fresh[start:stop]


@dataclass
class LiveHub:
    url: str
    hub: Hub
    secrets: dict[str, str]
    http: httpx.AsyncClient
    tokens: dict[str, str] = field(default_factory=dict)

    async def token(self, client_id: str) -> str:
        if client_id not in self.tokens:
            response = await self.http.post(
                self.url + "/oauth/token", data={"grant_type": "client_credentials"},
                auth=(client_id, self.secrets[client_id]),
            )
            assert response.status_code == 200, response.text
            self.tokens[client_id] = response.json()["access_token"]
        return self.tokens[client_id]

    async def status(self, number: str) -> dict[str, Any]:
        response = await self.http.post(
            self.url + "/graphql",
            json={"query": STATUS, "variables": {"n": number}},
            headers={
                "authorization": f"Bearer {await self.token('exit-entry-wuhan')}",
                "x-purpose-of-use": "residence-permit-check",
            },
        )
        assert response.status_code == 200, response.text
        permit: dict[str, Any] = response.json()["data"]["permit"]
        return permit

    async def push(self, body: Any, client_id: str = "wms") -> httpx.Response:
        return await self.http.post(
            self.url + "/events/permits", json=body,
            headers={"authorization": f"Bearer {await self.token(client_id)}"},
        )

    async def audit(self, kind: str) -> list[Any]:
        page = await self.hub.audit.search(
            AuditFilter(), 500, None, subject_view=False, today=dt.date.today()
        )
        return [r for r in page.records if r.kind == kind]


@asynccontextmanager
async def _live_hub(
    simulators: Simulators,
    database_url: str,
    tmp_path: Path,
    prefix: str,
    secrets: dict[str, str] | None = None,
    **overrides: Any,
) -> AsyncIterator[LiveHub]:
    """A hub served over HTTP and WebSocket; seeds the demo clients unless given their secrets."""
    settings = hub_settings(simulators, database_url, tmp_path, prefix)
    settings = Settings(**(settings.model_dump() | overrides))
    app = create_app(settings)
    async with serve(app, ws="websockets-sansio") as url, httpx.AsyncClient(timeout=30) as http:
        hub: Hub = app.state.hub
        if secrets is None:
            seeded = await seed_demo_clients(hub.auth)
            secrets = {str(c["client_id"]): str(c["client_secret"]) for c in seeded}
        yield LiveHub(url, hub, secrets, http)


async def _subscribe_wms_to(simulators: Simulators, *hubs: LiveHub) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.put(
            simulators.wms_url + "/admin/subscribers",
            json=[
                {
                    "url": h.url + "/events/permits", "tokenUrl": h.url + "/oauth/token",
                    "clientId": "wms", "clientSecret": h.secrets["wms"],
                }
                for h in hubs
            ],
        )
        assert response.status_code == 200


@asynccontextmanager
async def _own_live_hub(
    simulators: Simulators, database_url: str, tmp_path: Path
) -> AsyncIterator[LiveHub]:
    """A live hub on its own Redis prefix, dropped afterwards (no WMS pushes to it)."""
    prefix = f"test:{uuid.uuid4().hex[:12]}:"
    try:
        async with _live_hub(simulators, database_url, tmp_path, prefix) as hub:
            yield hub
    finally:
        await _drop_prefix(prefix)


@asynccontextmanager
async def _pushed_to(
    simulators: Simulators, database_url: str, tmp_path: Path, **overrides: Any
) -> AsyncIterator[LiveHub]:
    """A live hub the simulated WMS pushes its events to."""
    prefix = f"test:{uuid.uuid4().hex[:12]}:"
    try:
        async with _live_hub(
            simulators, database_url, tmp_path, prefix, webhook_backoff_seconds=0.05, **overrides
        ) as hub:
            await _subscribe_wms_to(simulators, hub)
            yield hub
    finally:
        async with httpx.AsyncClient() as client:
            await client.delete(simulators.wms_url + "/admin/subscribers")
        await _drop_prefix(prefix)


@pytest.fixture
async def live(
    simulators: Simulators, database_url: str, tmp_path: Path
) -> AsyncIterator[LiveHub]:
    async with _pushed_to(simulators, database_url, tmp_path) as hub:
        yield hub


@pytest.fixture
async def demo_live(
    simulators: Simulators, database_url: str, tmp_path: Path
) -> AsyncIterator[LiveHub]:
    """In demo mode, where webhooks may go over http to loopback receivers like the tests'."""
    async with _pushed_to(simulators, database_url, tmp_path, demo=True) as hub:
        yield hub


async def _change(simulators: Simulators, number: str, kind: str, **extra: Any) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.post(
            f"{simulators.wms_url}/admin/permits/{number}/changes", json={"kind": kind, **extra}
        )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def _wms_calls(simulators: Simulators) -> int:
    return int((await simulators.stats(simulators.wms_url))["total"])


# -- the cache never outlives a change ----------------------------------------------------------


async def test_a_cancellation_drops_the_cached_permit_at_once(
    live: LiveHub, simulators: Simulators
) -> None:
    [permit] = _fresh(simulators, "cancel")
    assert (await live.status(permit.number))["status"] == "VALID"
    before = await _wms_calls(simulators)
    assert (await live.status(permit.number))["status"] == "VALID"
    assert await _wms_calls(simulators) == before  # served from the cache

    pushed = await _change(simulators, permit.number, "CANCELLED")

    assert [d["status"] for d in pushed["deliveries"]] == [202]
    assert (await live.status(permit.number))["status"] == "CANCELLED"
    [record] = [r for r in await live.audit("event") if r.outcome == "OK"]
    assert record.client_id == "wms"
    assert record.subjects == (permit.number,)
    assert record.operation == "permitEvent.CANCELLED"


async def test_renewing_a_legacy_card_permit_moves_it_to_the_electronic_permit(
    live: LiveHub, simulators: Simulators
) -> None:
    [permit] = _fresh(simulators, "legacy", legacy=True)
    assert (await live.status(permit.number))["medium"] == "PHYSICAL_CARD"

    pushed = await _change(simulators, permit.number, "RENEWED")

    assert [e["kind"] for e in pushed["events"]] == ["RENEWED", "REISSUED_ELECTRONIC"]
    after = await live.status(permit.number)
    assert after["medium"] == "ELECTRONIC"
    assert dt.date.fromisoformat(after["validUntil"]) > permit.valid_until
    untouched = next(
        p for p in _fresh(simulators, "filter", legacy=True) if p.number != permit.number
    )
    assert (await live.status(untouched.number))["medium"] == "PHYSICAL_CARD"  # no change, no
    # replacement


# -- bad events change nothing and are recorded -------------------------------------------------


async def test_a_replayed_event_is_refused_and_audited(
    live: LiveHub, simulators: Simulators
) -> None:
    [permit] = _fresh(simulators, "replay")
    pushed = await _change(simulators, permit.number, "ALTERED", position="Chief engineer")
    assert [d["status"] for d in pushed["deliveries"]] == [202]

    again = await live.push({"event": pushed["signed"]})

    assert again.status_code == 409
    assert again.json()["errors"][0]["extensions"]["code"] == "CONFLICT"
    refused = [r for r in await live.audit("event") if r.error_codes == ("CONFLICT",)]
    assert [r.subjects for r in refused] == [(permit.number,)]


def _forged(number: str, **header: Any) -> str:
    key = generate_signing_key()
    key.ensure_kid()
    event = {
        "eventId": str(uuid.uuid4()), "permitNumber": number, "kind": "CANCELLED",
        "at": dt.datetime.now(dt.UTC).isoformat(), "status": "CANCELLED",
        "medium": "ELECTRONIC", "validUntil": "2030-01-01", "detail": None,
    }
    claims = {
        "iss": "wms", "jti": event["eventId"], "iat": int(dt.datetime.now(dt.UTC).timestamp()),
        "sub": number, "event": event,
    }
    protected = {"alg": "ES256", "typ": "permit-event+jwt", "kid": key.kid} | header
    return jwt.encode(protected, claims, key, algorithms=["ES256"])


async def test_unsigned_forged_or_malformed_events_are_refused_and_change_nothing(
    live: LiveHub, simulators: Simulators
) -> None:
    number = _fresh(simulators, "replay")[0].number
    genuine = (await _change(simulators, number, "ALTERED"))["signed"]
    header, payload, _signature = genuine.split(".")
    unsigned_header = orjson.dumps({"alg": "none", "typ": "permit-event+jwt"})
    none_header = base64.urlsafe_b64encode(unsigned_header).rstrip(b"=").decode()
    bodies: list[Any] = [
        {"event": f"{none_header}.{payload}."},  # alg none
        {"event": f"{header}.{payload}.{_signature[:-4]}AAAA"},  # tampered signature
        {"event": _forged(number)},  # signed, but not by the WMS
        {"event": "not a JWS"},
        {"permit": number, "status": "CANCELLED"},  # no signature at all
        ["a list"],
    ]
    for body in bodies:
        response = await live.push(body)
        assert response.status_code == 400, body
        assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert (await live.status(number))["status"] == "VALID"
    refused = [r for r in await live.audit("event") if r.outcome != "OK"]
    assert [r.error_codes for r in refused] == [("BAD_USER_INPUT",)] * len(bodies)


async def test_only_the_wms_may_push_events(live: LiveHub, simulators: Simulators) -> None:
    number = _fresh(simulators, "replay")[0].number
    response = await live.push({"event": _forged(number)}, client_id="exit-entry-wuhan")
    assert response.status_code == 403
    assert response.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    anonymous = await live.http.post(live.url + "/events/permits", json={"event": "x"})
    assert anonymous.status_code == 401
    assert anonymous.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


# -- subscriptions over graphql-transport-ws ----------------------------------------------------


def _purpose(client_id: str) -> str:
    """The purpose the agency subscribes for (one covering permitStatusChanged, if it has one)."""
    return purpose_for(client_id, "subscription { permitStatusChanged(numbers: []) { kind } }")


async def _open(
    hub: LiveHub, client_id: str = "exit-entry-wuhan", token: str | None = None,
    purpose: str | None = None,
) -> ClientConnection:
    ws = await connect(
        hub.url.replace("http://", "ws://") + "/graphql",
        subprotocols=[Subprotocol("graphql-transport-ws")],
    )
    await ws.send(
        orjson.dumps(
            {
                "type": "connection_init",
                "payload": {
                    "Authorization": f"Bearer {token or await hub.token(client_id)}",
                    "X-Purpose-Of-Use": purpose or _purpose(client_id),
                },
            }
        ).decode()
    )
    return ws


async def _message(ws: ClientConnection) -> dict[str, Any]:
    message: dict[str, Any] = orjson.loads(await asyncio.wait_for(ws.recv(), 10))
    return message


async def _subscribed(hub: LiveHub, numbers: list[str] | None) -> ClientConnection:
    ws = await _open(hub)
    assert (await _message(ws))["type"] == "connection_ack"
    await ws.send(
        orjson.dumps(
            {"id": "1", "type": "subscribe",
             "payload": {"query": SUBSCRIBE, "variables": {"n": numbers}}}
        ).decode()
    )
    await asyncio.sleep(0.2)  # the subscription is registered once the hub has read the message
    return ws


async def test_a_subscriber_receives_the_change_and_each_event_is_audited(
    live: LiveHub, simulators: Simulators
) -> None:
    [permit] = _fresh(simulators, "subscribe")
    ws = await _subscribed(live, [permit.number])
    try:
        await _change(simulators, permit.number, "CANCELLED")
        message = await _message(ws)
    finally:
        await ws.close()
    assert message["type"] == "next" and message["id"] == "1"
    event = message["payload"]["data"]["permitStatusChanged"]
    assert event["permitNumber"] == permit.number
    assert (event["kind"], event["status"]) == ("CANCELLED", "CANCELLED")
    [sent] = [r for r in await live.audit("subscription") if r.subjects]
    assert sent.subjects == (permit.number,)
    assert sent.client_id == "exit-entry-wuhan"
    assert "Subscription.permitStatusChanged" in sent.fields


async def test_a_subscriber_hears_only_the_permits_it_named(
    live: LiveHub, simulators: Simulators
) -> None:
    wanted, other = _fresh(simulators, "filter")
    ws = await _subscribed(live, [wanted.number])
    try:
        await _change(simulators, other.number, "ALTERED")
        await _change(simulators, wanted.number, "ALTERED")
        message = await _message(ws)
    finally:
        await ws.close()
    assert message["payload"]["data"]["permitStatusChanged"]["permitNumber"] == wanted.number


async def test_a_subscription_outside_the_clients_scopes_is_refused_and_audited(
    live: LiveHub,
) -> None:
    ws = await _open(live, "si-agency-wuhan")
    try:
        assert (await _message(ws))["type"] == "connection_ack"
        await ws.send(
            orjson.dumps(
                {"id": "s", "type": "subscribe", "payload": {"query": SUBSCRIBE}}
            ).decode()
        )
        message = await _message(ws)
    finally:
        await ws.close()
    assert message["type"] == "error" and message["id"] == "s"
    error = message["payload"][0]
    assert error["extensions"]["code"] == "FORBIDDEN"
    assert error["extensions"]["denied"] == ["permitStatusChanged"]
    refused = [r for r in await live.audit("subscription") if r.outcome == "DENIED"]
    assert [r.client_id for r in refused] == ["si-agency-wuhan"]


async def test_a_connection_without_a_valid_token_is_closed(live: LiveHub) -> None:
    ws = await _open(live, token="not-a-token")
    with pytest.raises(ConnectionClosed) as closed:
        await _message(ws)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403
    assert [r.outcome for r in await live.audit("subscription")] == ["DENIED"]


async def test_a_revoked_token_ends_the_subscription_before_the_next_event(
    live: LiveHub, simulators: Simulators
) -> None:
    [permit] = _fresh(simulators, "revoked")
    ws = await _subscribed(live, [permit.number])
    token = await live.token("exit-entry-wuhan")
    revoked = await live.http.post(
        live.url + "/oauth/revoke", data={"token": token},
        auth=("exit-entry-wuhan", live.secrets["exit-entry-wuhan"]),
    )
    assert revoked.status_code == 200
    await _change(simulators, permit.number, "ALTERED")
    with pytest.raises(ConnectionClosed) as closed:
        await _message(ws)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401


async def test_a_purpose_narrowed_ends_the_subscription_before_the_next_event(
    live: LiveHub, simulators: Simulators
) -> None:
    [permit] = _fresh(simulators, "purpose")
    ws = await _subscribed(live, [permit.number])  # for residence-permit-check
    await live.hub.auth.set_purpose_operations("residence-permit-check", ["permit", "permits"])
    await _change(simulators, permit.number, "ALTERED")
    with pytest.raises(ConnectionClosed) as closed:
        await _message(ws)  # no event: the connection ends first
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403
    sent = [r for r in await live.audit("subscription") if r.operation != "subscribe"]
    assert sent == []


# -- webhooks -------------------------------------------------------------------------------------


@dataclass
class Receiver:
    bodies: list[bytes] = field(default_factory=list)
    fail_first: int = 1

    async def endpoint(self, request: Request) -> Response:
        self.bodies.append(await request.body())
        if len(self.bodies) <= self.fail_first:
            return Response(status_code=503)
        return Response(status_code=202)


async def test_a_registered_webhook_gets_a_signed_event_retried_until_delivered(
    demo_live: LiveHub, simulators: Simulators
) -> None:
    live = demo_live
    [permit] = _fresh(simulators, "webhook")
    receiver = Receiver(fail_first=1)
    app = Starlette(routes=[Route("/hook", receiver.endpoint, methods=["POST"])])
    async with serve(app) as hook_url:
        await live.hub.auth.add_purpose("monitoring", [])  # webhooks only: no GraphQL
        await live.hub.auth.add_client(
            "hooked-agency", "An agency with a webhook", ["events:subscribe"], ["monitoring"],
            webhook_url=hook_url + "/hook",
        )
        await _change(simulators, permit.number, "CANCELLED")
        for _ in range(100):
            if len(receiver.bodies) >= 2:
                break
            await asyncio.sleep(0.1)
    assert len(receiver.bodies) == 2  # one failure, one retry
    keys = KeySet.import_key_set(live.hub.auth.jwks())  # type: ignore[arg-type]
    token = jwt.decode(receiver.bodies[1].decode(), keys, algorithms=["ES256"])
    assert token.header["typ"] == "secevent+jwt"
    change = token.claims["events"][EVENT_URI]
    assert (change["permitNumber"], change["status"]) == (permit.number, "CANCELLED")
    assert receiver.bodies[0] != b"" and token.claims["aud"] == hook_url + "/hook"
    async with live.hub.engine.connect() as conn:
        rows = (await conn.execute(select(webhook_deliveries))).mappings().all()
    assert [(r["client_id"], r["state"], r["attempts"]) for r in rows] == [
        ("hooked-agency", "DELIVERED", 2)
    ]


# -- two hub instances sharing Redis ------------------------------------------------------------


@pytest.mark.skipif(REDIS_URL is None, reason="instances share state through Redis only")
async def test_two_instances_neither_serves_a_cancelled_permit_and_both_tell_subscribers(
    simulators: Simulators, database_url: str, tmp_path: Path
) -> None:
    [permit] = _fresh(simulators, "two")
    prefix = f"test:{uuid.uuid4().hex[:12]}:"
    try:
        async with AsyncExitStack() as stack:
            first = await stack.enter_async_context(
                _live_hub(simulators, database_url, tmp_path / "a", prefix)
            )
            second = await stack.enter_async_context(  # same database: same clients
                _live_hub(simulators, database_url, tmp_path / "b", prefix, first.secrets)
            )
            await _subscribe_wms_to(simulators, first)  # the WMS knows only the first
            assert (await first.status(permit.number))["status"] == "VALID"
            assert (await second.status(permit.number))["status"] == "VALID"
            ws = await _subscribed(second, [permit.number])
            try:
                await _change(simulators, permit.number, "CANCELLED")
                message = await _message(ws)
            finally:
                await ws.close()
            assert message["payload"]["data"]["permitStatusChanged"]["status"] == "CANCELLED"
            assert (await second.status(permit.number))["status"] == "CANCELLED"
            assert (await first.status(permit.number))["status"] == "CANCELLED"
    finally:
        async with httpx.AsyncClient() as client:
            await client.delete(simulators.wms_url + "/admin/subscribers")
        await _drop_prefix(prefix)


async def test_a_subscriber_whose_instance_lost_redis_for_a_moment_misses_no_event(
    simulators: Simulators, database_url: str, tmp_path: Path
) -> None:
    """The second instance reaches a redis-server of this test's own through a proxy the test
    cuts while the first takes the event: once the second answers again, it reads the event
    from the stream where it left off and its subscriber gets it."""
    [permit] = _fresh(simulators, "outage")
    prefix = f"test:{uuid.uuid4().hex[:12]}:"
    try:
        async with AsyncExitStack() as stack:
            redis = await stack.enter_async_context(redis_server())
            proxy = await stack.enter_async_context(tcp_proxy(redis.port))
            first = await stack.enter_async_context(
                _live_hub(simulators, database_url, tmp_path / "a", prefix, redis_url=redis.url)
            )
            second = await stack.enter_async_context(
                _live_hub(simulators, database_url, tmp_path / "b", prefix, first.secrets,
                          redis_url=proxy.redis_url)
            )
            await _subscribe_wms_to(simulators, first)
            ws = await _subscribed(second, [permit.number])
            try:
                await proxy.cut()
                pushed = await _change(simulators, permit.number, "CANCELLED")
                await asyncio.sleep(0.3)  # the event is in the stream; the second cannot read
                await proxy.start()
                message = await _message(ws)
            finally:
                await ws.close()
            status = (await second.status(permit.number))["status"]
    finally:
        async with httpx.AsyncClient() as client:
            await client.delete(simulators.wms_url + "/admin/subscribers")

    assert [d["status"] for d in pushed["deliveries"]] == [202]
    assert message["type"] == "next"
    event = message["payload"]["data"]["permitStatusChanged"]
    assert (event["permitNumber"], event["status"]) == (permit.number, "CANCELLED")
    assert status == "CANCELLED"
