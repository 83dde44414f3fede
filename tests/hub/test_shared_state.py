"""Two hub instances on one database and a redis-server of this test's own (never the shared
one): revocations reach the other instance through the shared-state stream, a Redis outage
stops data requests only once an instance's replica is staler than the bound, an instance cut
off catches up from its last id, and one whose gap was trimmed, or whose Redis restarted
empty, reloads the denylist from the database.

Instance A talks to the redis-server directly; instance B through a proxy the test can cut, so
that B alone loses Redis while A goes on writing to the stream.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import redis.asyncio as redis_async
from asgi_lifespan import LifespanManager

from hub.admin import admin_services
from hub.app import create_app
from hub.components import Hub
from hub.demo_clients import seed_demo_clients
from hub.settings import Settings
from tests.conftest import Simulators, hub_settings
from tests.services import RedisServer, TcpProxy, redis_server, tcp_proxy

QUERY = "query($n: ID!) { permit(number: $n) { status } }"
CHECK = "residence-permit-check"
STALENESS = 1.5  # HUB_SHARED_STATE_MAX_STALENESS for these instances: shorter waits
CLIENT = "exit-entry-wuhan"


@dataclass
class Instance:
    http: httpx.AsyncClient
    hub: Hub
    permit: str

    async def ask(self, token: str) -> httpx.Response:
        return await self.http.post(
            "/graphql", json={"query": QUERY, "variables": {"n": self.permit}},
            headers={"authorization": f"Bearer {token}", "x-purpose-of-use": CHECK},
        )

    async def statuses_until(self, token: str, wanted: int, seconds: float) -> list[int]:
        """Asks every 50 ms until the answer is `wanted`, for up to `seconds`; every status."""
        seen: list[int] = []
        for _ in range(int(seconds / 0.05) + 1):
            seen.append((await self.ask(token)).status_code)
            if seen[-1] == wanted:
                break
            await asyncio.sleep(0.05)
        return seen


@dataclass
class Pair:
    a: Instance
    b: Instance
    redis: RedisServer
    proxy: TcpProxy
    secret: str
    prefix: str

    async def token(self) -> str:
        response = await self.a.http.post(
            "/oauth/token", data={"grant_type": "client_credentials"}, auth=(CLIENT, self.secret)
        )
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])

    async def revoke(self, token: str) -> None:
        response = await self.a.http.post(
            "/oauth/revoke", data={"token": token}, auth=(CLIENT, self.secret)
        )
        assert response.status_code == 200, response.text


@asynccontextmanager
async def _instance(settings: Settings, permit: str) -> AsyncIterator[Instance]:
    app = create_app(settings)
    async with LifespanManager(app, startup_timeout=30) as manager, httpx.AsyncClient(
        transport=httpx.ASGITransport(app=manager.app), base_url="http://127.0.0.1:8000"
    ) as http:
        yield Instance(http, app.state.hub, permit)


@asynccontextmanager
async def _pair(
    simulators: Simulators, database_url: str, tmp_path: Path
) -> AsyncIterator[Pair]:
    async with AsyncExitStack() as stack:
        redis = await stack.enter_async_context(redis_server())
        proxy = await stack.enter_async_context(tcp_proxy(redis.port))
        prefix = f"test:{uuid.uuid4().hex[:12]}:"
        base = hub_settings(simulators, database_url, tmp_path, prefix).model_dump()
        base |= {"shared_state_max_staleness": STALENESS}
        direct = Settings(**(base | {"redis_url": redis.url}))
        async with admin_services(direct) as admin:  # migrate and seed once, before both
            secrets = {str(c["client_id"]): str(c["client_secret"])
                       for c in await seed_demo_clients(admin.auth)}
        permit = simulators.dataset.samples["valid_permit"]
        a = await stack.enter_async_context(_instance(direct, permit))
        b = await stack.enter_async_context(
            _instance(Settings(**(base | {"redis_url": proxy.redis_url})), permit)
        )
        yield Pair(a, b, redis, proxy, secrets[CLIENT], prefix)


async def test_a_revocation_reaches_the_other_instance_and_an_outage_fails_closed_past_the_bound(
    simulators: Simulators, database_url: str, tmp_path: Path
) -> None:
    async with _pair(simulators, database_url, tmp_path) as pair:
        good, revoked = await pair.token(), await pair.token()
        for instance in (pair.a, pair.b):
            for token in (good, revoked):
                assert (await instance.ask(token)).status_code == 200

        await pair.revoke(revoked)
        here = (await pair.a.ask(revoked)).status_code
        there = await pair.b.statuses_until(revoked, 401, 1.0)

        await pair.redis.stop()
        down = [(await pair.b.ask(good)).status_code]  # the replica is still fresh
        down += await pair.b.statuses_until(good, 503, STALENESS + 5)
        refusal = await pair.b.ask(good)
        await pair.redis.start()  # empty: a restart that lost the stream
        back = {
            (name, kind): await instance.statuses_until(token, want, 10)
            for name, instance in (("a", pair.a), ("b", pair.b))
            for kind, token, want in (("good", good, 200), ("revoked", revoked, 401))
        }

    assert here == 401  # at once on the instance that revoked it
    assert there[-1] == 401 and set(there[:-1]) <= {200}  # refused at some poll within 1 s
    assert down[0] == 200  # Redis gone: still served, below the staleness bound
    assert down[-1] == 503 and set(down[:-1]) <= {200}  # then refused, never a 500
    assert refusal.headers["retry-after"] == "1"
    assert refusal.json()["errors"][0]["extensions"]["code"] == "UPSTREAM_UNAVAILABLE"
    # After the restart each instance reloaded the denylist from the database.
    for (_, kind), seen in back.items():
        assert seen[-1] == (200 if kind == "good" else 401), back
        assert set(seen[:-1]) <= {503}, back


async def test_an_instance_cut_off_catches_up_from_its_last_id_or_reloads_after_a_trimmed_gap(
    simulators: Simulators, database_url: str, tmp_path: Path
) -> None:
    async with _pair(simulators, database_url, tmp_path) as pair:
        good, caught_up, reloaded = await pair.token(), await pair.token(), await pair.token()
        for token in (good, caught_up, reloaded):
            assert (await pair.b.ask(token)).status_code == 200
        resets = pair.b.hub.auth.shared_state.resets

        # B loses Redis; A revokes meanwhile; B resumes from its last id and reads it.
        await pair.proxy.cut()
        await pair.revoke(caught_up)
        cut_off = await pair.b.statuses_until(good, 503, STALENESS + 5)
        await pair.proxy.start()
        resumed = await pair.b.statuses_until(caught_up, 401, 10)
        served = (await pair.b.ask(good)).status_code
        resumed_resets = pair.b.hub.auth.shared_state.resets

        # Again, but the stream is trimmed past B's last id before B is back: B cannot know
        # what it missed, so it reloads the denylist from the database.
        await pair.proxy.cut()
        await pair.revoke(reloaded)
        client = redis_async.Redis.from_url(pair.redis.url)
        try:
            stream = pair.prefix + "shared-state"
            await client.xadd(stream, {"kind": b"test-filler"}, maxlen=1, approximate=False)
            held = await client.xrange(stream)
        finally:
            await client.aclose()
        await pair.proxy.start()
        after_gap = await pair.b.statuses_until(reloaded, 401, 10)
        still_served = (await pair.b.ask(good)).status_code
        gap_resets = pair.b.hub.auth.shared_state.resets

    assert cut_off[-1] == 503 and set(cut_off[:-1]) <= {200}
    assert resumed[-1] == 401 and set(resumed[:-1]) <= {503}
    assert served == 200
    assert resumed_resets == resets  # caught up from the stream, no reload
    assert [fields for _, fields in held or []] == [{b"kind": b"test-filler"}]  # trimmed
    assert after_gap[-1] == 401 and set(after_gap[:-1]) <= {503, 200}
    assert still_served == 200
    assert gap_resets == resets + 1  # reloaded from the database
