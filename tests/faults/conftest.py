"""Production-shaped fault injection: real processes, real PostgreSQL, a private Redis, load.

The stack a fault-injection module gets (`fault_stack`, one per module):

- two `hub serve` processes, configured only by `HUB_*` variables, on one fresh PostgreSQL
  database that they reach through a loopback TCP proxy the test can cut (a "restart": open
  connections reset, new ones refused, then accepted again);
- a private `redis-server` on a free port, without persistence, that the test may flush, kill
  and start again (never the shared Redis other suites use);
- a Work Management System simulator of its own (`hub simulate wms`), a process the test can
  SIGSTOP and SIGCONT; the session's card simulator; agency databases of its own, seeded from
  the session dataset, so that the enrollments written under load touch nobody else's data.

`Load` drives both instances with a few concurrent clients (permit validity reads, and
`registerEnrollment` writes retried with their idempotency key until one is answered) and
keeps every outcome, so the tests can check what each response promised afterwards.

Every process started here is the leader of its own session, logged to a file under the
test's temporary directory (shown when a test fails) and killed on the way out, failure or not.
Nothing here ever signals a process it did not start.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import random
import shutil
import signal
import socket
import sys
import time
import uuid
from collections.abc import AsyncIterator, Generator, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as redis_async
from sqlalchemy.engine import make_url

from connectors.records import Permit
from hub.admin import admin_services
from hub.demo_clients import seed_demo_clients
from hub.settings import Settings
from simulators import Dataset, seed_agency_databases
from tests.conftest import AGENCY_REGIONS, Simulators
from tests.services import (
    CHEAP_SECRET_HASH,
    CHEAP_SECRET_HASH_ENV,
    POSTGRES_URL,
    TcpProxy,
    fresh_database,
)

REDIS_SERVER = shutil.which("redis-server")
ISSUER = "http://127.0.0.1:8000"  # an identifier only; every instance signs as it
UNREACHABLE_LIMIT = str(10**9)  # the rate and cost limits are still counted, never reached
READER = ("exit-entry-wuhan", "residence-permit-check")
WRITER = ("si-agency-wuhan", "social-insurance-enrollment")
# Each permit is registered by the agency whose jurisdiction holds it (it reads back its SSN).
WRITERS = {
    "420100": WRITER, "420500": ("si-agency-yichang", "social-insurance-enrollment"),
}
VALIDITY = "query($n: ID!) { permit(number: $n) { number status validUntil isValid } }"
REGISTER = """mutation($i: RegisterEnrollmentInput!) {
  registerEnrollment(input: $i) { created enrollment { ssn permitNumber status } } }"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- processes -----------------------------------------------------------------------------------


class Child:
    """One process we started: its own session, stdout and stderr appended to `log`."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.name, self.argv, self.env, self.log = name, argv, env, log
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        assert not self.running, f"{self.name} is already running"
        with self.log.open("ab") as out:
            out.write(f"--- {self.name} started at {time.strftime('%X')}\n".encode())
            out.flush()
            self.process = await asyncio.create_subprocess_exec(
                *self.argv, env=self.env, stdin=asyncio.subprocess.DEVNULL, stdout=out,
                stderr=asyncio.subprocess.STDOUT, start_new_session=True,
            )

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    def signal(self, sig: signal.Signals) -> None:
        """`sig` to our process group (its pid: we made it a session leader)."""
        if self.process is not None and self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, sig)

    async def kill(self) -> None:
        """SIGKILL, as a crash or the OOM killer would; returns once it is gone."""
        if self.process is None:
            return
        self.signal(signal.SIGCONT)  # a stopped process would keep its socket open
        self.signal(signal.SIGKILL)
        await self.process.wait()

    async def stop(self, grace: float = 10.0) -> None:
        if self.process is None:
            return
        self.signal(signal.SIGCONT)
        self.signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.process.wait(), grace)
        except TimeoutError:
            await self.kill()

    def tail(self, lines: int = 40) -> str:
        """The end of the log, without the hub's line per call to a source system."""
        try:
            text = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        text = [line for line in text if '"logger":"httpx"' not in line]
        return "\n".join(line[:400] for line in text[-lines:])


async def wait_healthy(child: Child, url: str, timeout: float = 60.0) -> None:  # noqa: ASYNC109
    """Until `url` answers 200; fails at once, with the log's tail, if the process exits."""
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if not child.running:
                raise AssertionError(f"{child.name} exited:\n{child.tail()}")
            with contextlib.suppress(httpx.TransportError):
                if (await client.get(url)).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise AssertionError(f"{child.name}: {url} not healthy in {timeout:.0f} s:\n{child.tail()}")


class PrivateRedis:
    """A `redis-server` of our own on a free port: no snapshots, no append-only file."""

    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        assert REDIS_SERVER is not None
        argv = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", str(tmp), "--daemonize", "no"]
        self.child = Child("redis", argv, dict(os.environ), tmp / "redis.log")

    async def start(self) -> None:
        await self.child.start()
        client = redis_async.Redis.from_url(self.url)
        try:
            for _ in range(100):
                if not self.child.running:
                    raise AssertionError(f"redis-server exited:\n{self.child.tail()}")
                with contextlib.suppress(OSError, redis_async.RedisError):
                    if await client.ping():
                        return
                await asyncio.sleep(0.05)
        finally:
            await client.aclose()
        raise AssertionError(f"redis-server did not answer:\n{self.child.tail()}")

    async def flushall(self) -> None:
        client = redis_async.Redis.from_url(self.url)
        try:
            await client.flushall()
        finally:
            await client.aclose()

    async def crash(self) -> None:
        await self.child.kill()


# -- the stack -------------------------------------------------------------------------------------


@dataclass
class HubInstance:
    index: int
    port: int
    child: Child

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        await self.child.start()
        await wait_healthy(self.child, self.url + "/healthz")


@dataclass
class FaultStack:
    tmp: Path
    dataset: Dataset
    database_url: str  # direct, for checks and the CLI
    served_database_url: str  # through the proxy: what the hub instances use
    agency_urls: dict[str, str]
    redis: PrivateRedis
    proxy: TcpProxy
    wms: Child
    wms_url: str
    hubs: list[HubInstance]
    secrets: dict[str, str]
    env: dict[str, str]
    fresh_permits: list[Permit]
    jwks: dict[str, Any] = field(default_factory=dict)
    cold_reads: int = 0

    @property
    def urls(self) -> list[str]:
        return [h.url for h in self.hubs]

    def take_permits(self, count: int) -> list[Permit]:
        """Permits nobody has enrolled yet, each handed out once in the module."""
        taken, self.fresh_permits = self.fresh_permits[:count], self.fresh_permits[count:]
        return taken

    def logs(self) -> str:
        children = [h.child for h in self.hubs] + [self.wms, self.redis.child]
        return "\n\n".join(f"=== {c.name} ({c.log})\n{c.tail(30)}" for c in children)

    async def cli(self, *args: str) -> tuple[int, str]:
        """`hub ARGS` against the hub database (directly, not through the proxy)."""
        env = {**self.env, "HUB_DATABASE_URL": self.database_url}
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "hub", *args, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), 120)
        assert process.returncode is not None
        # Standard output is the command's answer; standard error names the database it
        # opened, and says why when it fails.
        text = out.decode(errors="replace")
        if process.returncode != 0:
            text += err.decode(errors="replace")
        return process.returncode, text


def _fresh_permits(dataset: Dataset) -> list[Permit]:
    enrolled = {e.permit_number for e in dataset.enrollments.values()}
    samples = set(dataset.samples.values())
    fresh = [
        p for p in dataset.permits.values()
        if p.is_valid_on(dataset.today) and p.work_location in AGENCY_REGIONS
        and p.number not in enrolled and p.number not in samples
    ]
    random.Random(16).shuffle(fresh)
    return fresh


def _hub_env(
    database_url: str, redis_url: str, wms_url: str, cards_url: str,
    agency_urls: dict[str, str], tmp: Path, prefix: str,
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update(CHEAP_SECRET_HASH_ENV)
    env.update({
        "HUB_DATABASE_URL": database_url,
        "HUB_REDIS_URL": redis_url,
        "HUB_REDIS_PREFIX": prefix,
        "HUB_DATA_DIR": str(tmp / "hub"),
        "HUB_WMS_URL": wms_url,
        "HUB_CARDS_URL": cards_url,
        "HUB_AGENCY_DATABASES": json.dumps(agency_urls),
        "HUB_ISSUER": ISSUER,
        "HUB_RATE_LIMIT_PER_MINUTE": UNREACHABLE_LIMIT,
        "HUB_COST_BUDGET_PER_MINUTE": UNREACHABLE_LIMIT,
    })
    return env


async def _start_wms(
    stack: AsyncExitStack, tmp: Path, env: dict[str, str], today: dt.date
) -> tuple[Child, str]:
    """The WMS simulator as its own process, on the session dataset's seed, size and date (a
    run that crosses midnight would otherwise hold two different worlds)."""
    port = free_port()
    argv = [sys.executable, "-m", "hub", "simulate", "wms", "--port", str(port),
            "--data-dir", str(tmp / "wms"), "--seed", "2025", "--foreigners", "1500",
            "--today", today.isoformat()]
    child = Child("wms", argv, env, tmp / "wms.log")
    await child.start()
    stack.push_async_callback(child.stop)
    url = f"http://127.0.0.1:{port}"
    await wait_healthy(child, url + "/healthz", timeout=120)
    return child, url


@contextlib.asynccontextmanager
async def open_fault_stack(simulators: Simulators, tmp: Path) -> AsyncIterator[FaultStack]:
    """Everything above, up and ready; everything stopped and dropped on the way out."""
    dataset = simulators.dataset
    assert (dataset.seed, len(dataset.permits)) == (2025, 1810), "the WMS process's dataset"
    async with AsyncExitStack() as stack:
        database_url = await stack.enter_async_context(fresh_database(tmp, "faults"))
        agency_urls = {
            region: await stack.enter_async_context(fresh_database(tmp, f"faults{region}"))
            for region in AGENCY_REGIONS
        }
        seeding = asyncio.ensure_future(seed_agency_databases(dataset, agency_urls))
        base_env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
        wms, wms_url = await _start_wms(stack, tmp, base_env, dataset.today)
        await seeding
        redis = PrivateRedis(tmp)
        await redis.start()
        stack.push_async_callback(redis.child.stop)
        target = make_url(database_url)
        proxy = TcpProxy(target.host or "127.0.0.1", target.port or 5432)
        await proxy.start()
        stack.push_async_callback(proxy.close)
        served = target.set(host="127.0.0.1", port=proxy.port).render_as_string(
            hide_password=False
        )
        prefix = f"faults:{uuid.uuid4().hex[:8]}:"
        env = _hub_env(served, redis.url, wms_url, simulators.cards_url, agency_urls, tmp,
                       prefix)
        settings = Settings(
            database_url=database_url, redis_url=redis.url, redis_prefix=prefix,
            data_dir=tmp / "hub", wms_url=wms_url, cards_url=simulators.cards_url,
            agency_databases=agency_urls, issuer=ISSUER, **CHEAP_SECRET_HASH,
        )
        async with admin_services(settings) as admin:  # migrate and seed once, before both
            seeded = await seed_demo_clients(admin.auth)
        secrets = {str(c["client_id"]): str(c["client_secret"]) for c in seeded}
        hubs = []
        for index in range(2):
            port = free_port()
            argv = [sys.executable, "-m", "hub", "serve", "--port", str(port),
                    "--no-access-log"]
            child = Child(f"hub{index}", argv, env, tmp / f"hub{index}.log")
            hubs.append(HubInstance(index, port, child))
            stack.push_async_callback(child.stop)
        await asyncio.gather(*(h.start() for h in hubs))
        built = FaultStack(
            tmp, dataset, database_url, served, agency_urls, redis, proxy, wms, wms_url, hubs,
            secrets, env, _fresh_permits(dataset),
        )
        async with httpx.AsyncClient() as client:
            built.jwks = (await client.get(hubs[0].url + "/.well-known/jwks.json")).json()
        yield built


@pytest.fixture(scope="module")
async def fault_stack(
    simulators: Simulators, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[FaultStack]:
    tmp = tmp_path_factory.mktemp("faults")
    async with open_fault_stack(simulators, tmp) as stack:
        yield stack


# Skips before the session's simulators are started for nothing (`fault_stack` needs them).
needs_production_shape = [
    pytest.mark.skipif(
        POSTGRES_URL is None,
        reason="production shape: needs PostgreSQL (HUB_TEST_DATABASE_URL, as in CI)",
    ),
    pytest.mark.skipif(REDIS_SERVER is None, reason="needs a redis-server binary"),
]

_STACKS: dict[str, FaultStack] = {}


@pytest.fixture(autouse=True)
def _remember_stack(request: pytest.FixtureRequest) -> Iterator[None]:
    """Lets the report hook show the processes' logs of a failed test."""
    if "fault_stack" in request.fixturenames:
        _STACKS[request.node.nodeid] = request.getfixturevalue("fault_stack")
    yield
    _STACKS.pop(request.node.nodeid, None)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report: pytest.TestReport = yield
    stack = _STACKS.get(item.nodeid)
    if stack is not None and report.failed:
        report.sections.append(("hub, wms and redis logs (tails)", stack.logs()))
    return report


# -- load ------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """One request and what came back (status None: no response, the connection failed)."""

    op: str  # "read" | "write"
    instance: int
    started: float  # time.monotonic()
    ended: float
    status: int | None
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    transport_error: str | None = None
    key: str | None = None  # a write's idempotency key
    permit: str | None = None

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    @property
    def error_codes(self) -> list[str]:
        body = self.json if self.status is not None else None
        if not isinstance(body, dict):
            return []
        return [str((e.get("extensions") or {}).get("code")) for e in body.get("errors") or []]

    @property
    def complete(self) -> bool:
        """A 200 with the whole answer: no error anywhere in it."""
        return self.status == 200 and not self.error_codes


class Load:
    """Readers and writers on every instance until `stop`; each request's outcome is kept.

    A write whose outcome the client cannot know (no response, a 5xx, a 401 because the
    revocation status was unknown, an upstream error) is sent again with the same
    idempotency key and input, to the next instance, until one is answered in full:
    what a careful agency would do.
    """

    def __init__(
        self, stack: FaultStack, *, readers: int = 6, writers: int = 2, permits: int = 60
    ) -> None:
        self.stack = stack
        self.readers, self.writers = readers, writers
        self.to_enroll = stack.take_permits(permits)
        self.read_numbers = sorted(stack.dataset.permits)
        self.outcomes: list[Outcome] = []
        self.enrolled: dict[str, str] = {}  # idempotency key -> the permit it enrolls
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._tokens: dict[str, str] = {}

    async def __aenter__(self) -> Load:
        async with httpx.AsyncClient(timeout=30) as client:
            for client_id in (READER[0], *(who for who, _ in WRITERS.values())):
                for url in self.stack.urls:  # a token from either works on both
                    response = await client.post(
                        url + "/oauth/token", data={"grant_type": "client_credentials"},
                        auth=(client_id, self.stack.secrets[client_id]),
                    )
                    if response.status_code == 200:
                        self._tokens[client_id] = response.json()["access_token"]
                        break
                assert client_id in self._tokens, f"no token for {client_id}"
        self._tasks = [asyncio.create_task(self._reader(i)) for i in range(self.readers)]
        self._tasks += [asyncio.create_task(self._writer(i)) for i in range(self.writers)]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._stopping.set()
        async with asyncio.timeout(60):  # a write under way finishes its retries first
            await asyncio.gather(*self._tasks)

    async def _send(
        self, client: httpx.AsyncClient, op: str, instance: int, who: tuple[str, str],
        query: str, variables: dict[str, Any], **extra: Any,
    ) -> Outcome:
        url = self.stack.urls[instance]
        headers = {"authorization": f"Bearer {self._tokens[who[0]]}",
                   "x-purpose-of-use": who[1]}
        started = time.monotonic()
        try:
            response = await client.post(
                url + "/graphql", json={"query": query, "variables": variables},
                headers=headers,
            )
        except httpx.TransportError as exc:
            outcome = Outcome(op, instance, started, time.monotonic(), None,
                              transport_error=type(exc).__name__, **extra)
        else:
            outcome = Outcome(op, instance, started, time.monotonic(), response.status_code,
                              response.content, dict(response.headers), **extra)
        self.outcomes.append(outcome)
        return outcome

    async def _reader(self, index: int) -> None:
        """Half the reads name one of a few permits (cached), half one not read for a while."""
        rng = random.Random(index)
        hot = self.read_numbers[:40]
        async with httpx.AsyncClient(timeout=15) as client:
            turn = index
            while not self._stopping.is_set():
                turn += 1
                number = rng.choice(hot) if turn % 2 else self._next_cold()
                await self._send(client, "read", turn % 2, READER, VALIDITY, {"n": number},
                                 permit=number)
                await asyncio.sleep(0.05)

    def _next_cold(self) -> str:
        numbers = self.read_numbers
        self.stack.cold_reads += 1  # through the module: a permit is cold again 1,800 reads on
        return numbers[40 + self.stack.cold_reads % (len(numbers) - 40)]

    async def _writer(self, index: int) -> None:
        mine = self.to_enroll[index :: self.writers]
        async with httpx.AsyncClient(timeout=15) as client:
            turn = index
            for permit in mine:
                if self._stopping.is_set():
                    return
                key = f"faults-{uuid.uuid4().hex}"
                self.enrolled[key] = permit.number
                given = {"permitNumber": permit.number, "region": permit.work_location,
                         "name": permit.holder.name, "nationality": permit.holder.nationality,
                         "idempotencyKey": key}
                deadline = time.monotonic() + 45
                while time.monotonic() < deadline:
                    turn += 1
                    writer = WRITERS[permit.work_location]
                    outcome = await self._send(client, "write", turn % 2, writer, REGISTER,
                                               {"i": given}, key=key, permit=permit.number)
                    if outcome.complete or _final(outcome):
                        break
                    await asyncio.sleep(0.2)
                await asyncio.sleep(0.3)


def _final(outcome: Outcome) -> bool:
    """An answer that sending again would not change (a refusal of the input itself)."""
    if outcome.status is None or outcome.status >= 500 or outcome.status == 401:
        return False
    retriable = {"UPSTREAM_UNAVAILABLE", "UPSTREAM_TIMEOUT", "INTERNAL", "UNAUTHENTICATED"}
    return not retriable.intersection(outcome.error_codes)
