"""With Redis unreachable, revocation fails closed; nothing leaks or breaks.

The hub is pointed at a Redis that does not answer (a closed port). Tokens can still be
issued and the hub still starts and answers health checks, but a bearer token whose
revocation status cannot be read is refused before any source system is called, and the
refusal is audited. The refusal is a 503 UPSTREAM_UNAVAILABLE with Retry-After, not a 401: the
token is not at fault, and a 401 would send the client for a new one (argon2, about 0.2 s of
the hub's CPU each) instead of retrying. (The cache falling through to the WMS when the store is
down is tested on the connector, tests/connectors/test_permit_cache.py.)
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from pathlib import Path

import httpx
import orjson
import pytest
from asgi_lifespan import LifespanManager
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from hub.admin import admin_services
from hub.app import create_app
from hub.components import Hub
from hub.demo_clients import seed_demo_clients
from hub.settings import Settings
from observability.audit import AuditFilter
from tests.conftest import Simulators, _drop_prefix, hub_settings
from tests.simulators.servers import serve

DEAD_REDIS = "redis://127.0.0.1:1/0"


async def test_revocation_fails_closed_when_redis_is_down(
    simulators: Simulators, database_url: str, tmp_path: Path
) -> None:
    prefix = f"test:{uuid.uuid4().hex[:12]}:"
    settings = hub_settings(simulators, database_url, tmp_path, prefix)
    async with admin_services(settings) as admin:  # registered while Redis was up
        secrets = {str(c["client_id"]): str(c["client_secret"])
                   for c in await seed_demo_clients(admin.auth)}
    await _drop_prefix(prefix)
    app = create_app(Settings(**(settings.model_dump() | {"redis_url": DEAD_REDIS})))
    await simulators.reset()
    async with LifespanManager(app, startup_timeout=30) as manager, httpx.AsyncClient(
        transport=httpx.ASGITransport(app=manager.app), base_url="http://127.0.0.1:8000"
    ) as http:
        hub: Hub = app.state.hub
        token = await http.post(
            "/oauth/token", data={"grant_type": "client_credentials"},
            auth=("exit-entry-wuhan", secrets["exit-entry-wuhan"]),
        )
        assert token.status_code == 200
        response = await http.post(
            "/graphql",
            json={"query": "query($n: ID!) { permit(number: $n) { status } }",
                  "variables": {"n": simulators.dataset.samples["valid_permit"]}},
            headers={"authorization": f"Bearer {token.json()['access_token']}",
                     "x-purpose-of-use": "residence-permit-check"},
        )
        wms = await http.post(
            "/oauth/token", data={"grant_type": "client_credentials"},
            auth=("wms", secrets["wms"]),
        )
        event = await http.post(
            "/events/permits", json={"event": "not-even-read"},
            headers={"authorization": f"Bearer {wms.json()['access_token']}"},
        )
        ready = await http.get("/readyz")
        health = await http.get("/healthz")
        page = await hub.audit.search(
            AuditFilter(), 10, None, subject_view=False, today=dt.date.today()
        )

    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert "www-authenticate" not in response.headers
    assert response.json()["errors"][0]["extensions"]["code"] == "UPSTREAM_UNAVAILABLE"
    assert "data" not in response.json()
    assert await simulators.upstream_calls() == 0
    refusals = [r.error_codes for r in page.records if r.kind == "graphql"]
    assert refusals == [("UPSTREAM_UNAVAILABLE",)]
    # The event route shares the check: the WMS is told to send the event again.
    assert event.status_code == 503 and event.headers["retry-after"] == "1"
    assert event.json()["errors"][0]["extensions"]["code"] == "UPSTREAM_UNAVAILABLE"
    assert health.status_code == 200
    assert ready.status_code == 503 and ready.json()["checks"]["redis"] is False


async def test_a_subscription_is_told_to_try_again_later_when_redis_is_down(
    simulators: Simulators, database_url: str, tmp_path: Path
) -> None:
    prefix = f"test:{uuid.uuid4().hex[:12]}:"
    settings = hub_settings(simulators, database_url, tmp_path, prefix)
    async with admin_services(settings) as admin:
        secrets = {str(c["client_id"]): str(c["client_secret"])
                   for c in await seed_demo_clients(admin.auth)}
    await _drop_prefix(prefix)
    app = create_app(Settings(**(settings.model_dump() | {"redis_url": DEAD_REDIS})))
    async with serve(app, ws="websockets-sansio") as url, httpx.AsyncClient() as http:
        token = await http.post(
            url + "/oauth/token", data={"grant_type": "client_credentials"},
            auth=("exit-entry-wuhan", secrets["exit-entry-wuhan"]),
        )
        async with connect(url.replace("http://", "ws://") + "/graphql",
                           subprotocols=[Subprotocol("graphql-transport-ws")]) as ws:
            await ws.send(orjson.dumps({"type": "connection_init", "payload": {
                "Authorization": f"Bearer {token.json()['access_token']}",
                "X-Purpose-Of-Use": "investigation",
            }}).decode())
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 10)
        hub: Hub = app.state.hub
        page = await hub.audit.search(
            AuditFilter(), 10, None, subject_view=False, today=dt.date.today()
        )

    # 1013 "try again later", not 4403: the token is fine, its revocation status is unknown.
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013
    refusals = [r.error_codes for r in page.records if r.kind == "subscription"]
    assert refusals == [("UPSTREAM_UNAVAILABLE",)]
