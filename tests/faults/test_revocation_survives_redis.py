"""Revocations and client disables outlive Redis: the hub database is their record.

Two `hub serve` processes share one hub database and a PRIVATE Redis that this test starts
(no persistence) and then flushes, and separately restarts: a revoked token and a disabled
client's token stay refused (401) on both instances, a good token is answered (200). Once
that Redis has been down longer than the replica's staleness bound, a bearer request is a 503
with Retry-After, never a 401 or a 500. The
last test needs no Redis: a hub started with an empty store (the embedded one's in-process
store after a restart) still refuses a token revoked before.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import httpx
import pytest
import redis.asyncio as redis_async
from asgi_lifespan import LifespanManager

from hub.admin import admin_services
from hub.app import create_app
from hub.demo_clients import seed_demo_clients
from hub.settings import Settings
from tests.conftest import Simulators, _drop_prefix, hub_settings
from tests.services import CHEAP_SECRET_HASH_ENV

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
needs_redis_server = pytest.mark.skipif(
    not os.access(REDIS_SERVER, os.X_OK),
    reason="needs a redis-server binary to start a private Redis it may flush and restart",
)

QUERY = "query($n: ID!) { permit(number: $n) { status } }"
CHECK = "residence-permit-check"  # a purpose covering QUERY that needs no officer


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrivateRedis:
    """A redis-server of this test alone, without persistence: a restart loses everything."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self._process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self._process = await asyncio.create_subprocess_exec(
            REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--daemonize", "no",
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        client = redis_async.Redis.from_url(self.url)
        try:
            for _ in range(100):
                try:
                    if await client.ping():
                        return
                except (ConnectionError, OSError, redis_async.RedisError):
                    await asyncio.sleep(0.05)
        finally:
            await client.aclose()
        raise AssertionError("the private redis-server did not start")

    async def stop(self) -> None:
        if self._process is not None and self._process.returncode is None:
            self._process.kill()
            await self._process.wait()
        self._process = None

    async def flushall(self) -> None:
        client = redis_async.Redis.from_url(self.url)
        try:
            await client.flushall()
        finally:
            await client.aclose()


@asynccontextmanager
async def private_redis() -> AsyncIterator[PrivateRedis]:
    server = PrivateRedis(_free_port())
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@dataclass
class Instances:
    urls: list[str]
    http: httpx.AsyncClient
    permit: str

    async def ask(self, url: str, token: str, purpose: str) -> httpx.Response:
        return await self.http.post(
            url + "/graphql",
            json={"query": QUERY, "variables": {"n": self.permit}},
            headers={"authorization": f"Bearer {token}", "x-purpose-of-use": purpose},
        )

    async def refused(self, url: str, token: str, purpose: str) -> httpx.Response:
        """The answers until the first that is not a 200 (the replica staler than its bound),
        for up to 10 s; that one."""
        for _ in range(100):
            response = await self.ask(url, token, purpose)
            if response.status_code != 200:
                break
            await asyncio.sleep(0.1)
        return response

    async def settled(self, url: str, token: str, purpose: str) -> list[int]:
        """The statuses until the first that is not a 503 (Redis coming back)."""
        statuses: list[int] = []
        for _ in range(50):
            statuses.append((await self.ask(url, token, purpose)).status_code)
            if statuses[-1] != 503:
                break
            await asyncio.sleep(0.1)
        return statuses


async def _wait_healthy(url: str, process: asyncio.subprocess.Process) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(300):
            assert process.returncode is None, "hub process exited"
            try:
                if (await client.get(url + "/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError(f"{url} did not become healthy")


def _log_file(path: Path) -> BinaryIO:
    return path.open("wb")


@asynccontextmanager
async def two_hubs(
    simulators: Simulators, database_url: str, tmp_path: Path, settings: Settings
) -> AsyncIterator[list[str]]:
    env = {
        **os.environ,
        **CHEAP_SECRET_HASH_ENV,
        "HUB_DATABASE_URL": database_url,
        "HUB_REDIS_URL": settings.redis_url or "",
        "HUB_REDIS_PREFIX": settings.redis_prefix,
        "HUB_WMS_URL": simulators.wms_url,
        "HUB_CARDS_URL": simulators.cards_url,
        "HUB_AGENCY_DATABASES": json.dumps(simulators.agency_urls),
        "HUB_ISSUER": settings.issuer,
        "HUB_DATA_DIR": str(tmp_path),
    }
    ports = [_free_port(), _free_port()]
    processes = []
    for index, port in enumerate(ports):
        with _log_file(tmp_path / f"hub{index}.log") as log:
            processes.append(await asyncio.create_subprocess_exec(
                sys.executable, "-m", "hub", "serve", "--port", str(port), "--no-access-log",
                env=env, stdout=subprocess.DEVNULL, stderr=log,
            ))
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        await asyncio.gather(*(_wait_healthy(u, p) for u, p in zip(urls, processes, strict=True)))
        yield urls
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            await asyncio.wait_for(process.wait(), timeout=20)


@needs_redis_server
async def test_revocations_and_disables_survive_a_flushed_and_a_restarted_redis(
    simulators: Simulators, database_url: str, tmp_path: Path
) -> None:
    async with private_redis() as redis_server:
        prefix = f"test:{uuid.uuid4().hex[:12]}:"
        settings = hub_settings(simulators, database_url, tmp_path, prefix)
        settings = Settings(**(settings.model_dump() | {"redis_url": redis_server.url}))
        async with admin_services(settings) as admin:
            secrets = {str(c["client_id"]): str(c["client_secret"])
                       for c in await seed_demo_clients(admin.auth)}
        async with two_hubs(simulators, database_url, tmp_path, settings) as urls, \
                httpx.AsyncClient(timeout=30) as http:

            async def token(client_id: str) -> str:
                response = await http.post(
                    urls[0] + "/oauth/token", data={"grant_type": "client_credentials"},
                    auth=(client_id, secrets[client_id]),
                )
                assert response.status_code == 200, response.text
                return str(response.json()["access_token"])

            hubs = Instances(urls, http, simulators.dataset.samples["valid_permit"])
            good, revoked = await token("exit-entry-wuhan"), await token("exit-entry-wuhan")
            disabled = await token("ssc-card-center-hubei")
            cases = [
                (good, CHECK, 200),
                (revoked, CHECK, 401),
                (disabled, "card-issuance", 401),
            ]
            for url in urls:  # every token works, and is cached as verified, on both
                for sent, purpose, _ in cases:
                    assert (await hubs.ask(url, sent, purpose)).status_code == 200

            answer = await http.post(
                urls[1] + "/oauth/revoke", data={"token": revoked},
                auth=("exit-entry-wuhan", secrets["exit-entry-wuhan"]),
            )
            assert answer.status_code == 200
            async with admin_services(settings) as admin:  # `hub clients disable`
                await admin.auth.disable_client("ssc-card-center-hubei")

            async def statuses() -> dict[tuple[str, str], list[int]]:
                return {
                    (url, purpose): await hubs.settled(url, sent, purpose)
                    for url in urls
                    for sent, purpose, _ in cases
                }

            expected = {(url, purpose): want for url in urls for _, purpose, want in cases}
            for _ in range(20):  # the stream brings both changes to both within a second
                before = await statuses()
                if {case: answers[-1] for case, answers in before.items()} == expected:
                    break
                await asyncio.sleep(0.05)
            await redis_server.flushall()
            flushed = await statuses()
            await redis_server.stop()
            down = await hubs.refused(urls[0], good, CHECK)  # once the replica is too stale
            await redis_server.start()  # empty: no persistence
            restarted = await statuses()

    for seen in (before, flushed, restarted):
        assert {case: answers[-1] for case, answers in seen.items()} == expected
        assert all(set(answers[:-1]) <= {503} for answers in seen.values())  # never a 500
    assert down.status_code == 503
    assert down.headers["retry-after"]
    assert down.json()["errors"][0]["extensions"]["code"] == "UPSTREAM_UNAVAILABLE"
    for index in (0, 1):
        assert "Traceback" not in (tmp_path / f"hub{index}.log").read_text()


@needs_redis_server
async def test_a_revocation_made_while_redis_does_not_answer_is_done_and_reaches_it_later(
    simulators: Simulators, database_url: str, tmp_path: Path
) -> None:
    """Redis keeps its data but does not answer for a while (CLIENT PAUSE): the revocation is
    recorded in the database and answered as done; once Redis answers, the revoking instance
    rewrites the copy and both instances refuse the token."""
    async with private_redis() as redis_server:
        prefix = f"test:{uuid.uuid4().hex[:12]}:"
        settings = hub_settings(simulators, database_url, tmp_path, prefix)
        settings = Settings(**(settings.model_dump() | {"redis_url": redis_server.url}))
        async with admin_services(settings) as admin:
            secrets = {str(c["client_id"]): str(c["client_secret"])
                       for c in await seed_demo_clients(admin.auth)}
        async with two_hubs(simulators, database_url, tmp_path, settings) as urls, \
                httpx.AsyncClient(timeout=30) as http:
            auth = ("exit-entry-wuhan", secrets["exit-entry-wuhan"])
            form = {"grant_type": "client_credentials"}
            token = (await http.post(urls[0] + "/oauth/token", data=form, auth=auth)).json()
            hubs = Instances(urls, http, simulators.dataset.samples["valid_permit"])
            for url in urls:
                assert (await hubs.ask(url, token["access_token"], CHECK)).is_success
            pauser = redis_async.Redis.from_url(redis_server.url)
            try:
                await pauser.execute_command("CLIENT", "PAUSE", "4000", "ALL")
                revoked = await http.post(
                    urls[0] + "/oauth/revoke", data={"token": token["access_token"]}, auth=auth
                )
                await pauser.execute_command("CLIENT", "UNPAUSE")
            finally:
                await pauser.aclose()
            final: dict[str, list[int]] = {url: [] for url in urls}
            for _ in range(50):  # the rewrite follows within about a second
                for url in urls:
                    final[url] = await hubs.settled(url, token["access_token"], CHECK)
                if all(answers[-1] == 401 for answers in final.values()):
                    break
                await asyncio.sleep(0.2)

    assert revoked.status_code == 200
    assert {url: answers[-1] for url, answers in final.items()} == dict.fromkeys(urls, 401)


async def test_a_revocation_survives_a_fresh_store(
    simulators: Simulators, database_url: str, tmp_path: Path
) -> None:
    """The embedded hub's in-process store dies with the process (and a Redis key prefix can be
    new): a hub started on the same database with an empty store still refuses the token."""
    prefix = f"test:{uuid.uuid4().hex[:12]}:"
    settings = hub_settings(simulators, database_url, tmp_path, prefix)
    async with admin_services(settings) as admin:
        secrets = {str(c["client_id"]): str(c["client_secret"])
                   for c in await seed_demo_clients(admin.auth)}
    auth = ("exit-entry-wuhan", secrets["exit-entry-wuhan"])
    permit = simulators.dataset.samples["valid_permit"]
    answers = []
    tokens: list[str] = []
    for run in range(2):
        fresh = Settings(**(settings.model_dump() | {"redis_prefix": f"{prefix}{run}:"}))
        app = create_app(fresh)
        async with LifespanManager(app, startup_timeout=30) as manager, httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app), base_url="http://127.0.0.1:8000"
        ) as http:
            if run == 0:
                for _ in range(2):
                    issued = await http.post(
                        "/oauth/token", data={"grant_type": "client_credentials"}, auth=auth
                    )
                    tokens.append(issued.json()["access_token"])
                revoked = await http.post("/oauth/revoke", data={"token": tokens[1]}, auth=auth)
                assert revoked.status_code == 200
            hubs = Instances(["http://127.0.0.1:8000"], http, permit)
            answers.append([
                (await hubs.ask(hubs.urls[0], t, CHECK)).status_code for t in tokens
            ])
        await _drop_prefix(f"{prefix}{run}:")

    assert answers == [[200, 401], [200, 401]]
