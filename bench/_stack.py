"""The production-like setup the benchmark drives, started as separate processes and torn down.

- PostgreSQL: a fresh hub database and one database per agency region, created beside the
  database of `--database-url` and dropped (WITH FORCE) at the end.
- Redis: a private key prefix (`bench:<random>:`), every key under it deleted at the end.
- The simulators: `hub simulate wms` and `hub simulate cards`, and the agency simulator on the
  PostgreSQL databases (`bench._agency`, which explains why not `hub simulate agency`), all from
  the same seed and size as the dataset the benchmark builds its requests from.
- The hub: N workers on one port (`bench._hub_server` under uvicorn, or granian's own workers),
  configured only by `HUB_*` variables; migrated and seeded with the demo agencies first.

The request rate limit and the cost budget are raised far out of reach (they are still
checked, in Redis, on every request): at thousands of requests per second a client would
otherwise be refused within a second.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import redis.asyncio as redis_async
from sqlalchemy.engine import make_url

from bench._procs import Child, Processes, StartFailed, free_port
from connectors.cache import COPIES_DROPPED
from hub.admin import admin_services
from hub.demo_clients import seed_demo_clients
from hub.settings import Settings
from infra.shared_state import STREAM
from simulators import AGENCY_REGIONS, Dataset, generate

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
ISSUER = "http://127.0.0.1:8000"  # an identifier only; http is allowed on loopback
UNREACHABLE_LIMIT = str(10**12)


@dataclass(frozen=True)
class Options:
    database_url: str
    redis_url: str
    seed: int
    foreigners: int
    workers: int
    keep_logs: bool = False


@dataclass
class HubHandle:
    url: str
    port: int
    label: str
    children: list[Child]

    @property
    def worker_pids(self) -> list[int]:
        return [c.pid for c in self.children]


@dataclass
class Stack:
    options: Options
    procs: Processes
    tmp: Path
    dataset: Dataset
    wms_url: str
    cards_url: str
    agency_databases: dict[str, str]
    hub_database_url: str
    redis_prefix: str
    apollo_database_url: str  # the same-work Apollo peer's audit table (bench/peers/apollo)
    secrets: dict[str, str] = field(default_factory=dict)
    hub: HubHandle | None = None
    _starts: int = 0

    def hub_env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
        env.update({
            "HUB_DATABASE_URL": self.hub_database_url,
            "HUB_REDIS_URL": self.options.redis_url,
            "HUB_REDIS_PREFIX": self.redis_prefix,
            "HUB_DATA_DIR": str(self.tmp / "hub"),
            "HUB_WMS_URL": self.wms_url,
            "HUB_CARDS_URL": self.cards_url,
            "HUB_AGENCY_DATABASES": json.dumps(self.agency_databases),
            "HUB_ISSUER": ISSUER,
            "HUB_RATE_LIMIT_PER_MINUTE": UNREACHABLE_LIMIT,
            "HUB_COST_BUDGET_PER_MINUTE": UNREACHABLE_LIMIT,
            "PYTHONPATH": str(ROOT),
        })
        env.update(extra or {})
        return env

    async def start_hub(
        self, server: str = "uvicorn", *, access_log: bool = True,
        extra_env: dict[str, str] | None = None,
    ) -> HubHandle:
        """Start the hub (after stopping any running one); returns once every worker is ready."""
        await self.stop_hub()
        self._starts += 1
        port = free_port()
        ready = self.tmp / f"ready-hub-{self._starts}"
        ready.mkdir()
        env = self.hub_env(extra_env)
        workers = self.options.workers
        children = []
        if server == "uvicorn":
            for i in range(workers):
                argv = [sys.executable, "-m", "bench._hub_server", "--port", str(port),
                        "--ready-dir", str(ready)]
                if not access_log:
                    argv.append("--no-access-log")
                children.append(self.procs.start(f"hub{self._starts}-{i}", argv, env, ROOT))
        elif server == "granian":
            env["BENCH_READY_DIR"] = str(ready)
            argv = [str(BIN / "granian"), "--interface", "asgi", "--factory",
                    "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
                    "--loop", "uvloop", "--http", "1", "--backlog", "2048",
                    "bench._hub_server:granian_app"]
            children.append(self.procs.start(f"hub{self._starts}-granian", argv, env, ROOT))
        else:
            raise ValueError(f"unknown server {server!r}")
        url = f"http://127.0.0.1:{port}"
        for child in children:
            await self.procs.wait_ready(child, ready, workers, url + "/readyz")
        label = server + ("" if access_log or server != "uvicorn" else " (no access log)")
        self.hub = HubHandle(url, port, label, children)
        return self.hub

    async def stop_hub(self) -> None:
        if self.hub is not None:
            for child in self.hub.children:
                await self.procs.stop(child.name)
            self.hub = None

    async def drop_permit_cache(self) -> None:
        """Forget the hub's cached permits (under our private prefix; `connectors.cache` keys),
        and tell every hub process to drop its local copies (a shared-state stream entry)."""
        await drop_redis_prefix(self.options.redis_url, self.redis_prefix + "permit:v1:")
        client = redis_async.Redis.from_url(self.options.redis_url)
        try:
            await client.xadd(self.redis_prefix + STREAM, {"kind": COPIES_DROPPED})
        finally:
            await client.aclose()

    async def tokens(self, *client_ids: str) -> dict[str, str]:
        assert self.hub is not None
        tokens = {}
        async with httpx.AsyncClient(base_url=self.hub.url, timeout=30) as client:
            for client_id in client_ids:
                response = await client.post(
                    "/oauth/token", data={"grant_type": "client_credentials"},
                    auth=(client_id, self.secrets[client_id]),
                )
                if response.status_code != 200:
                    raise StartFailed(f"no token for {client_id}: {response.text[:300]}")
                tokens[client_id] = response.json()["access_token"]
        return tokens


@asynccontextmanager
async def postgres_databases(url: str, roles: list[str]) -> AsyncIterator[dict[str, str]]:
    """A fresh database per role beside the one in `url`; all dropped on the way out."""
    tag = uuid.uuid4().hex[:8]
    names = {role: f"bench_{role}_{tag}" for role in roles}
    admin_dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        admin = await asyncpg.connect(admin_dsn, timeout=10)
    except (OSError, asyncpg.PostgresError) as exc:
        raise StartFailed(f"PostgreSQL at {url}: {exc}") from exc
    created: list[str] = []
    try:
        for name in names.values():
            await admin.execute(f'CREATE DATABASE "{name}"')
            created.append(name)
        yield {
            role: make_url(url).set(database=name).render_as_string(hide_password=False)
            for role, name in names.items()
        }
    finally:
        for name in created:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def drop_redis_prefix(url: str, prefix: str) -> None:
    client = redis_async.Redis.from_url(url)
    try:
        keys = [k async for k in client.scan_iter(match=prefix + "*", count=1000)]
        for i in range(0, len(keys), 1000):
            await client.delete(*keys[i : i + 1000])
    finally:
        await client.aclose()


async def _check_redis(url: str) -> None:
    client = redis_async.Redis.from_url(url)
    try:
        await client.ping()
    except (OSError, redis_async.RedisError) as exc:
        raise StartFailed(f"Redis at {url}: {exc}") from exc
    finally:
        await client.aclose()


async def _start_simulators(
    procs: Processes, options: Options, tmp: Path, agency_databases: dict[str, str]
) -> tuple[str, str]:
    data = ["--data-dir", str(tmp / "sim"), "--seed", str(options.seed),
            "--foreigners", str(options.foreigners)]
    ports = {kind: free_port() for kind in ("wms", "cards", "agency")}
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env["PYTHONPATH"] = str(ROOT)
    children = {
        kind: procs.start(
            f"sim-{kind}",
            [str(BIN / "hub"), "simulate", kind, "--port", str(ports[kind]), *data], env, ROOT,
        )
        for kind in ("wms", "cards")
    }
    children["agency"] = procs.start(
        "sim-agency",
        [sys.executable, "-m", "bench._agency", "--port", str(ports["agency"]), *data,
         "--databases", json.dumps(agency_databases)],
        env, ROOT,
    )
    await asyncio.gather(*(
        procs.wait_ready(child, None, 1, f"http://127.0.0.1:{ports[kind]}/healthz", timeout=180)
        for kind, child in children.items()
    ))
    return f"http://127.0.0.1:{ports['wms']}", f"http://127.0.0.1:{ports['cards']}"


@asynccontextmanager
async def open_stack(options: Options) -> AsyncIterator[Stack]:
    """Everything the hub needs, up; everything torn down on the way out, failure or not."""
    async with AsyncExitStack() as stack:
        tmp = Path(tempfile.mkdtemp(prefix="permit-hub-bench-"))
        if not options.keep_logs:
            stack.callback(shutil.rmtree, tmp, ignore_errors=True)
        (tmp / "logs").mkdir()
        await _check_redis(options.redis_url)
        roles = ["hub", "apollo", *(f"agency_{r}" for r in AGENCY_REGIONS)]
        urls = await stack.enter_async_context(postgres_databases(options.database_url, roles))
        prefix = f"bench:{uuid.uuid4().hex[:12]}:"
        stack.push_async_callback(drop_redis_prefix, options.redis_url, prefix)
        procs = Processes(tmp / "logs")
        stack.push_async_callback(procs.stop_all)  # runs first: before databases are dropped
        agency_databases = {r: urls[f"agency_{r}"] for r in AGENCY_REGIONS}
        simulators = asyncio.ensure_future(
            _start_simulators(procs, options, tmp, agency_databases)
        )
        try:
            # The same generator, seed and size as the simulators: the requests name real data.
            dataset = await asyncio.to_thread(generate, options.seed, options.foreigners)
            wms_url, cards_url = await simulators
        finally:
            if not simulators.done():
                simulators.cancel()
        built = Stack(options, procs, tmp, dataset, wms_url, cards_url, agency_databases,
                      urls["hub"], prefix, urls["apollo"])
        settings = Settings(
            database_url=urls["hub"], redis_url=options.redis_url, redis_prefix=prefix,
            data_dir=tmp / "hub", wms_url=wms_url, cards_url=cards_url,
            agency_databases=agency_databases, issuer=ISSUER,
        )
        # Migrate and register the demo agencies once, before any worker starts (as
        # tests/hub/test_two_instances.py does): workers then find the schema and keys made.
        async with admin_services(settings) as admin:
            seeded = await seed_demo_clients(admin.auth)
        built.secrets = {str(c["client_id"]): str(c["client_secret"]) for c in seeded}
        if options.keep_logs:
            print(f"logs kept in {tmp / 'logs'}")
        yield built
