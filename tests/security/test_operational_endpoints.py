"""/metrics and /readyz's detail are an operator's: not shown to any address on the network.

The hub runs in-process; the caller's socket address is set on the ASGI transport, as a real
server would set it from the connection (a forwarding header is not an address).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from asgi_lifespan import LifespanManager

from hub.app import create_app
from hub.components import Hub
from hub.demo_clients import seed_demo_clients
from hub.settings import Settings
from tests.conftest import Simulators, SqlCounter, _drop_prefix, hub_settings
from tests.services import REDIS_URL

REMOTE = ("203.0.113.7", 40123)


@dataclass
class Callers:
    hub: Hub
    local: httpx.AsyncClient  # from 127.0.0.1
    remote: httpx.AsyncClient  # from REMOTE

    async def token(self, client_id: str, secret: str) -> str:
        response = await self.remote.post(
            "/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)
        )
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])


@asynccontextmanager
async def _callers(
    simulators: Simulators, database_url: str, tmp_path: Path, **overrides: Any
) -> AsyncIterator[Callers]:
    prefix = f"test:{uuid.uuid4().hex[:12]}:"
    settings = hub_settings(simulators, database_url, tmp_path, prefix)
    settings = Settings(**(settings.model_dump() | overrides))
    app = create_app(settings)
    base = "http://hub.example"
    try:
        async with LifespanManager(app, startup_timeout=30) as manager:
            local = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=manager.app, client=("127.0.0.1", 5000)),
                base_url=base,
            )
            remote = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=manager.app, client=REMOTE), base_url=base
            )
            async with local, remote:
                yield Callers(app.state.hub, local, remote)
    finally:
        await _drop_prefix(prefix)


async def _ops_client(callers: Callers, scopes: list[str]) -> tuple[str, str]:
    if "operations" not in {p.name for p in await callers.hub.auth.list_purposes()}:
        await callers.hub.auth.add_purpose("operations", [])  # /metrics and /readyz: no GraphQL
    client, secret = await callers.hub.auth.add_client(
        f"scraper-{uuid.uuid4().hex[:6]}", "operations", scopes, ["operations"]
    )
    assert secret is not None
    return client.client_id, secret


async def test_metrics_are_refused_to_an_address_outside_the_operations_list(
    simulators: Simulators, database_url: str, tmp_path: Path
) -> None:
    async with _callers(simulators, database_url, tmp_path) as callers:
        seeded = await seed_demo_clients(callers.hub.auth)
        secrets = {str(c["client_id"]): str(c["client_secret"]) for c in seeded}
        agency = await callers.token("exit-entry-wuhan", secrets["exit-entry-wuhan"])
        await callers.remote.post(
            "/graphql", json={"query": "{ __typename }"},
            headers={
                "authorization": f"Bearer {agency}", "x-purpose-of-use": "residence-permit-check"
            },
        )
        anonymous = await callers.remote.get("/metrics")
        forwarded = await callers.remote.get("/metrics", headers={"x-forwarded-for": "127.0.0.1"})
        with_agency_token = await callers.remote.get(
            "/metrics", headers={"authorization": f"Bearer {agency}"}
        )
        local = await callers.local.get("/metrics")
    for refused in (anonymous, forwarded):
        assert refused.status_code == 401
        assert "exit-entry-wuhan" not in refused.text and "hub_" not in refused.text
        assert refused.headers["www-authenticate"].startswith("Bearer")
    assert with_agency_token.status_code == 403
    assert with_agency_token.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert "hub_" not in with_agency_token.text
    assert local.status_code == 200 and "exit-entry-wuhan" in local.text


async def test_an_operations_token_reads_the_metrics_from_anywhere_until_revoked(
    simulators: Simulators, database_url: str, tmp_path: Path
) -> None:
    async with _callers(simulators, database_url, tmp_path) as callers:
        client_id, secret = await _ops_client(callers, ["ops:read"])
        token = await callers.token(client_id, secret)
        headers = {"authorization": f"Bearer {token}"}
        allowed = await callers.remote.get("/metrics", headers=headers)
        ready = await callers.remote.get("/readyz", headers=headers)
        await callers.hub.auth.disable_client(client_id)
        after = await callers.remote.get("/metrics", headers=headers)
    assert allowed.status_code == 200 and "hub_graphql_requests_total" in allowed.text
    assert ready.status_code == 200 and "checks" in ready.json()
    assert after.status_code == 401


async def test_readyz_tells_a_stranger_only_the_overall_status(
    simulators: Simulators, database_url: str, tmp_path: Path
) -> None:
    async with _callers(simulators, database_url, tmp_path) as callers:
        remote = await callers.remote.get("/readyz")
        local = await callers.local.get("/readyz")
        health = await callers.remote.get("/healthz")
    assert remote.status_code == 200 and remote.json() == {"status": "ready"}
    assert local.status_code == 200 and "signing_key_age_seconds" in local.json()
    assert set(local.json()["checks"]) >= {"database", "redis", "wms", "cards", "signing_key"}
    assert health.status_code == 200


async def test_readyz_does_not_report_redis_when_there_is_none(
    simulators: Simulators, database_url: str, tmp_path: Path
) -> None:
    async with _callers(simulators, database_url, tmp_path) as callers:
        checks = (await callers.local.get("/readyz")).json()["checks"]
    assert checks["redis"] == (True if REDIS_URL else "in-process")


async def test_the_operations_list_is_a_setting(
    simulators: Simulators, database_url: str, tmp_path: Path
) -> None:
    async with _callers(
        simulators, database_url, tmp_path, operations_allowed=["203.0.113.0/24"]
    ) as callers:
        remote = await callers.remote.get("/metrics")
        local = await callers.local.get("/metrics")
    assert remote.status_code == 200
    assert local.status_code == 401


async def test_a_flood_of_strangers_readyz_checks_the_dependencies_once(
    simulators: Simulators, database_url: str, tmp_path: Path
) -> None:
    """An open endpoint must not multiply into pings of every source system and database."""
    async with _callers(simulators, database_url, tmp_path) as callers:
        statements = SqlCounter(callers.hub)
        remote = await asyncio.gather(*(callers.remote.get("/readyz") for _ in range(50)))
        strangers = dict(statements.counts)
        statements.counts.clear()
        for _ in range(3):
            await callers.local.get("/readyz")
        operator = dict(statements.counts)
    assert {r.status_code for r in remote} == {200}
    assert strangers == {"420100": 1, "420500": 1}  # one shared round for all fifty
    assert operator == {"420100": 3, "420500": 3}  # an operator's view is always fresh
