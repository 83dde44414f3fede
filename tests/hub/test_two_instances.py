"""Two hub processes on one database and one Redis: one audit chain, shared tokens."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import socket
import subprocess
import sys
import uuid
from contextlib import AsyncExitStack
from pathlib import Path

import httpx

from hub.admin import admin_services
from hub.demo_clients import seed_demo_clients
from hub.settings import Settings
from observability.audit import AuditFilter
from tests.conftest import Simulators, _drop_prefix, hub_settings
from tests.services import REDIS_URL, private_redis


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve_env(
    simulators: Simulators, database_url: str, tmp_path: Path, settings: Settings, prefix: str
) -> dict[str, str]:
    """The environment of a `hub serve` process on this test's database and Redis prefix."""
    env = {
        **os.environ,
        "HUB_DATABASE_URL": database_url,
        "HUB_WMS_URL": simulators.wms_url,
        "HUB_CARDS_URL": simulators.cards_url,
        "HUB_AGENCY_DATABASES": json.dumps(simulators.agency_urls),
        "HUB_REDIS_PREFIX": prefix,
        "HUB_ISSUER": settings.issuer,
        "HUB_DATA_DIR": str(tmp_path),
    }
    if settings.redis_url:
        env["HUB_REDIS_URL"] = settings.redis_url
    return env


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


async def test_two_hub_processes_write_one_verifiable_chain(
    simulators: Simulators, database_url: str, tmp_path: Path
) -> None:
    prefix = f"test:{uuid.uuid4().hex[:12]}:"
    settings = hub_settings(simulators, database_url, tmp_path, prefix)
    async with admin_services(settings) as admin:  # migrate and seed once, before both start
        secrets = {
            str(c["client_id"]): str(c["client_secret"])
            for c in await seed_demo_clients(admin.auth)
        }
    env = _serve_env(simulators, database_url, tmp_path, settings, prefix)
    ports = [_free_port(), _free_port()]
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "hub",
            "serve",
            "--port",
            str(port),
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for port in ports
    ]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        await asyncio.gather(*(_wait_healthy(u, p) for u, p in zip(urls, processes, strict=True)))
        async with httpx.AsyncClient(timeout=30) as client:
            token = (
                await client.post(
                    urls[0] + "/oauth/token",
                    data={"grant_type": "client_credentials"},
                    auth=("exit-entry-wuhan", secrets["exit-entry-wuhan"]),
                )
            ).json()["access_token"]
            headers = {
                "authorization": f"Bearer {token}", "x-purpose-of-use": "residence-permit-check"
            }
            numbers = sorted(simulators.dataset.permits)[:100]
            query = "query($n: ID!) { permit(number: $n) { status } }"
            responses = await asyncio.gather(
                *(
                    client.post(
                        url + "/graphql",
                        json={"query": query, "variables": {"n": n}},
                        headers=headers,
                    )
                    for n in numbers
                    for url in urls  # a token from one instance works on the other
                )
            )
        assert [r.status_code for r in responses] == [200] * 200
        ids = {r.headers["x-hub-audit-record"] for r in responses}
        assert len(ids) == 200
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            await asyncio.wait_for(process.wait(), timeout=20)
        await _drop_prefix(prefix)
    async with admin_services(settings) as admin:
        page = await admin.audit.search(
            AuditFilter(client_id="exit-entry-wuhan"),
            500,
            None,
            subject_view=False,
            today=dt.date.today(),
        )
        assert ids <= {r.id for r in page.records}
        result = await admin.audit.verify()
        assert result.ok, result.reason


async def test_hub_serve_with_two_workers_starts_on_a_fresh_database(
    simulators: Simulators, database_url: str, tmp_path: Path
) -> None:
    """The workers of `hub serve --workers 2` must not race to migrate one database."""
    async with AsyncExitStack() as stack:
        # Several workers need shared state: a private Redis when the suite runs without one.
        redis_url = REDIS_URL
        if redis_url is None:
            redis_url = await stack.enter_async_context(private_redis())
        await _serve_two_workers(simulators, database_url, tmp_path, redis_url)


async def _serve_two_workers(
    simulators: Simulators, database_url: str, tmp_path: Path, redis_url: str
) -> None:
    prefix = f"test:{uuid.uuid4().hex[:12]}:"
    settings = hub_settings(simulators, database_url, tmp_path, prefix)
    env = _serve_env(simulators, database_url, tmp_path, settings, prefix)
    env["HUB_REDIS_URL"] = redis_url
    port = _free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hub", "serve", "--port", str(port), "--workers", "2",
        "--no-access-log", env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        await _wait_healthy(url, process)
        async with httpx.AsyncClient(timeout=30) as client:
            # Many connections, so both workers answer; each has the one migrated schema.
            answers = await asyncio.gather(
                *(client.get(url + "/.well-known/jwks.json") for _ in range(40))
            )
        assert {r.status_code for r in answers} == {200}
        assert len({json.dumps(r.json(), sort_keys=True) for r in answers}) == 1
        await asyncio.sleep(1)
        assert process.returncode is None  # no worker failed to start
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), timeout=20)
        await _drop_prefix(prefix)


def _without_redis(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k != "HUB_REDIS_URL"}


async def _refusal_of(env: dict[str, str], *args: str) -> tuple[int, str, bool]:
    """(exit code, stderr, whether the port ever answered) of a `hub serve` that should refuse."""
    port = _free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hub", "serve", "--port", str(port), *args,
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        _, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
    finally:
        with socket.socket() as sock:
            answered = sock.connect_ex(("127.0.0.1", port)) == 0
        if process.returncode is None:  # it started: stop it, the test has failed
            process.terminate()
            await asyncio.wait_for(process.wait(), timeout=20)
    assert process.returncode is not None
    return process.returncode, stderr.decode(), answered


async def test_several_workers_without_redis_refuse_to_start(
    simulators: Simulators, database_url: str, tmp_path: Path
) -> None:
    """Per-worker revocation lists, replay caches and budgets would let a revoked token in."""
    prefix = f"test:{uuid.uuid4().hex[:12]}:"
    settings = hub_settings(simulators, database_url, tmp_path, prefix)
    env = _without_redis(_serve_env(simulators, database_url, tmp_path, settings, prefix))
    code, stderr, answered = await _refusal_of(env, "--workers", "2")
    assert code != 0 and not answered
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "HUB_REDIS_URL" in lines[0] and "Traceback" not in stderr


async def test_an_instance_declared_one_of_several_without_redis_refuses_to_start(
    simulators: Simulators, database_url: str, tmp_path: Path
) -> None:
    """One worker per process, several processes behind a load balancer: the same danger."""
    prefix = f"test:{uuid.uuid4().hex[:12]}:"
    settings = hub_settings(simulators, database_url, tmp_path, prefix)
    env = _without_redis(_serve_env(simulators, database_url, tmp_path, settings, prefix))
    code, stderr, answered = await _refusal_of({**env, "HUB_INSTANCES": "2"})
    assert code != 0 and not answered
    assert len(stderr.strip().splitlines()) == 1, stderr
    assert "HUB_REDIS_URL" in stderr and "HUB_INSTANCES" in stderr
