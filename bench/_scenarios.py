"""The scenarios of issue 8 (and the bench items of issues 6 and 7), each a function of a run.

Every scenario appends rows to `Results` and prints one progress line per run; the final table
(`bench._report`) is the record.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from sqlalchemy.engine import make_url

from bench._cpu import OtherLoad
from bench._driver import Figures, drive
from bench._load import Spec
from bench._procs import Processes, StartFailed, free_port
from bench._stack import BIN, ISSUER, ROOT, UNREACHABLE_LIMIT, Stack
from connectors.records import Permit
from hub.settings import Settings
from simulators import AGENCY_REGIONS, Dataset

VALIDITY = "query Validity($n: ID!) { permit(number: $n) { number status validUntil isValid } }"
BATCH = (
    "query Batch($ns: [ID!]!) {"
    " permits(numbers: $ns) { number status enrollment { ssn } cards { status } } }"
)
CARD_CHECK = "query CardCheck($n: ID!) { permit(number: $n) { number status cards { status } } }"
REGISTER = (
    "mutation Register($i: RegisterEnrollmentInput!) { registerEnrollment(input: $i) {"
    " created enrollment { ssn permitNumber status } } }"
)

# Who asks what, and why (hub/demo_clients.py). The batch needs `card:status` and
# `enrollment:read`: si-agency-wuhan has no `card:status` and is refused whole (FORBIDDEN),
# so the batch is asked by the card centre, the demo agency whose scopes admit that document.
VALIDITY_CLIENT = ("exit-entry-wuhan", "residence-permit-check")
# card-issuance: the card centre's purpose that covers reading permits (card-service covers
# only updateCardStatus and cards: README.md, "Purposes of use").
BATCH_CLIENT = ("ssc-card-center-hubei", "card-issuance")
REFUSED_BATCH_CLIENT = ("si-agency-wuhan", "benefit-check")
ENROLL_CLIENT = ("si-agency-wuhan", "social-insurance-enrollment")
CARD_CLIENT = ("ssc-card-center-hubei", "card-issuance")
PAGE = 500
# Checked in turn by `validity`: spread over the dataset, every status. A pass over them takes
# a few seconds, so `_prime` can fill the permit cache (30 s TTL) just before each window.
VALIDITY_PERMITS = 1000
# Issue 6: card queries per second sent beside the measured validity load (an open loop, so
# that the hub sees the same background whether the card system answers or hangs).
BACKGROUND_CARD_QUERIES = 20.0
PROFILE_DIR = ROOT / "var" / "bench"
TRACING_TURNS = 3  # issue 7: off/on pairs; the ratio printed is their median
TURNS = 3  # hub and Apollo validity runs in turn; the ratio printed is the pairs' median


@dataclass
class Row:
    scenario: str
    figures: Figures | None = None
    note: str = ""
    value: str = ""  # for rows that are not a load run (cost growth, ratios)


@dataclass
class Results:
    rows: list[Row] = field(default_factory=list)
    figures: dict[str, Figures] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add(self, key: str, scenario: str, figures: Figures, note: str = "") -> Figures:
        self.figures[key] = figures
        self.rows.append(Row(scenario, figures, note))
        print(f"  {scenario:44} {figures.line()}", flush=True)
        return figures


@dataclass(frozen=True)
class RunConfig:
    duration: float
    warmup: float
    connections: int
    workers: int
    generator_processes: int
    quick: bool


# ---- requests -----------------------------------------------------------------------------------


def _body(query: str, variables: dict[str, Any], operation: str) -> str:
    return json.dumps({"query": query, "variables": variables, "operationName": operation})


def validity_bodies(dataset: Dataset, count: int = VALIDITY_PERMITS) -> list[str]:
    """`count` permits spread over the whole dataset (every status), each request the next."""
    numbers = sorted(dataset.permits)
    step = max(1, len(numbers) // count)
    return [_body(VALIDITY, {"n": n}, "Validity") for n in numbers[::step][:count]]


def validity_answer(permit: Permit, today: dt.date) -> dict[str, Any]:
    """What the hub answers for `validity` (the peers serve exactly this, from memory)."""
    return {
        "number": permit.number,
        "status": permit.status.value,
        "validUntil": permit.valid_until.isoformat(),
        "isValid": permit.is_valid_on(today),
    }


def batch_pages(dataset: Dataset, size: int) -> list[list[str]]:
    numbers = sorted(dataset.permits)
    return [numbers[i : i + size] for i in range(0, len(numbers) - size + 1, size)]


def fresh_permits(dataset: Dataset) -> list[Permit]:
    """VALID, unenrolled permits in an agency region (as tests/hub/test_enrollment.py picks)."""
    enrolled = {e.permit_number for e in dataset.enrollments.values()}
    samples = set(dataset.samples.values())
    return sorted(
        (p for p in dataset.permits.values()
         if p.is_valid_on(dataset.today) and p.work_location in AGENCY_REGIONS
         and p.number not in enrolled and p.number not in samples),
        key=lambda p: p.number,
    )


def enroll_bodies(dataset: Dataset) -> list[str]:
    run = uuid.uuid4().hex[:8]
    return [
        _body(REGISTER, {"i": {
            "permitNumber": p.number, "region": p.work_location, "name": p.holder.name,
            "nationality": p.holder.nationality, "idempotencyKey": f"bench-{run}-{p.number}",
        }}, "Register")
        for p in fresh_permits(dataset)
    ]


def card_check_bodies(dataset: Dataset) -> list[str]:
    enrolled = sorted(e.permit_number for e in dataset.enrollments.values())
    return [_body(CARD_CHECK, {"n": n}, "CardCheck") for n in enrolled]


def _headers(token: str | None, purpose: str | None) -> dict[str, str]:
    headers = {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if purpose:
        headers["X-Purpose-Of-Use"] = purpose
    return headers


async def load(
    cfg: RunConfig, url: str, bodies: list[str], headers: dict[str, str], *,
    connections: int | None = None, rate: float | None = None, once: bool = False,
    duration: float | None = None, warmup: float | None = None,
    marker: str | None = '"errors"',
    servers: list[int] | None = None,
) -> Figures:
    """One load run; with `servers` (a server's worker pids), also its CPU time per request."""
    host, port = url.removeprefix("http://").split(":")
    spec = Spec(
        host=host, port=int(port), bodies=bodies, headers=headers,
        connections=connections or cfg.connections,
        duration=cfg.duration if duration is None else duration,
        warmup=cfg.warmup if warmup is None else warmup,
        rate=rate, once=once, error_marker=marker,
    )
    others = OtherLoad(spec.warmup, set(servers or ()))
    try:
        figures = await drive(spec, cfg.generator_processes)
    finally:
        figures_other = others.stop()
    figures.other_cpu = figures_other
    figures.machine_busy = others.machine_busy
    if servers and figures.requests:
        figures.server_cpu_ms = 1000 * others.server_seconds / figures.requests
    return figures


async def post(url: str, body: str, headers: dict[str, str]) -> Any:
    async with httpx.AsyncClient(timeout=60) as client:
        response = await client.post(
            url + "/graphql", content=body,
            headers={**headers, "content-type": "application/json"},
        )
    try:
        return response.status_code, response.json()
    except ValueError:
        return response.status_code, response.text[:300]


async def expect_validity(url: str, dataset: Dataset, headers: dict[str, str], who: str) -> None:
    """`who` answers `validity` exactly as the hub must, for a handful of permits."""
    for name in ("valid_permit", "expired_permit", "cancelled_permit", "revoked_permit"):
        permit = dataset.permits[dataset.samples[name]]
        status, got = await post(url, _body(VALIDITY, {"n": permit.number}, "Validity"), headers)
        expected = {"data": {"permit": validity_answer(permit, dataset.today)}}
        if status != 200 or got != expected:
            raise StartFailed(f"{who} answers `validity` for the {name} with {status} {got!r},"
                              f" expected {expected!r}")


# ---- the generator's ceiling and the peers --------------------------------------------------


async def _start_peer(
    procs: Processes, tmp: Path, name: str, argv: list[str], workers: int, processes: int,
    cwd: Path, probe_url: str, probe_body: dict[str, Any],
    probe_headers: dict[str, str] | None = None,
) -> list[str]:
    """`processes` copies of `argv` (1 when the peer forks its own workers); their names."""
    ready = tmp / f"ready-{name}"
    ready.mkdir()
    names = [f"{name}-{i}" for i in range(processes)]
    children = [procs.start(n, [*argv, "--ready-dir", str(ready)], cwd=cwd) for n in names]
    for child in children:
        await procs.wait_ready(child, ready, workers, probe_url, timeout=60, method="POST",
                               json=probe_body, headers=probe_headers)
    return names


async def ceiling(cfg: RunConfig, procs: Processes, tmp: Path, bodies: list[str],
                  results: Results) -> None:
    print("generator ceiling: the same load against a server that does nothing", flush=True)
    port = free_port()
    for i in range(cfg.workers):
        ready = tmp / "ready-trivial"
        ready.mkdir(exist_ok=True)
        procs.start(f"trivial-{i}", [sys.executable, "-m", "bench._trivial", "--port",
                                     str(port), "--ready-dir", str(ready)], cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    await procs.wait_ready(procs.children["trivial-0"], tmp / "ready-trivial", cfg.workers,
                           url + "/healthz")
    figures = await load(cfg, url, bodies, {"Authorization": "Bearer " + "x" * 600,
                                            "X-Purpose-Of-Use": "residence-permit-check"})
    results.add("ceiling", f"generator ceiling (no-op server, {cfg.workers} proc)", figures,
                "the most this generator sends on this machine")
    for i in range(cfg.workers):
        await procs.stop(f"trivial-{i}")


def npm_ci(apollo_dir: Path) -> None:
    """`npm ci` unless every dependency of package.json is installed already."""
    wanted = json.loads((apollo_dir / "package.json").read_text())["dependencies"]
    if all((apollo_dir / "node_modules" / name / "package.json").is_file() for name in wanted):
        return
    npm = shutil.which("npm")
    if npm is None:
        raise StartFailed("Apollo peer: npm is not installed (Node 20 and npm are needed)")
    print("  npm ci (bench/peers/apollo)", flush=True)
    done = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund"], cwd=apollo_dir, capture_output=True, text=True,
        timeout=300, check=False,
    )
    if done.returncode != 0:
        output = done.stdout[-2000:] + done.stderr[-2000:]
        raise StartFailed(f"Apollo peer: npm ci failed:\n{output}")


def _peer_data(tmp: Path, dataset: Dataset) -> Path:
    """The validity answers the peers serve from memory, for every permit of the dataset."""
    data = tmp / "permits.json"
    data.write_text(json.dumps({
        n: validity_answer(p, dataset.today) for n, p in dataset.permits.items()
    }))
    return data


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        raise StartFailed("Apollo peer: node is not installed (Node 20 is needed)")
    return node


def _apollo_argv(node: str, data: Path, workers: int) -> list[str]:
    return [node, "server.mjs", "--data", str(data), "--workers", str(workers)]


def _node_url(url: str) -> str:
    """A SQLAlchemy PostgreSQL URL as node-postgres takes it (no `+asyncpg`)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _samework_argv(node: str, data: Path, workers: int, stack: Stack) -> list[str]:
    """The same-work Apollo peer (bench/peers/apollo/samework.mjs) against the hub's JWKS, the
    stack's Redis (under its private prefix) and a database of its own."""
    assert stack.hub is not None
    return [node, "samework.mjs", "--data", str(data), "--workers", str(workers),
            "--jwks", stack.hub.url + "/.well-known/jwks.json", "--issuer", ISSUER,
            "--audience", Settings.model_fields["audience"].default,
            "--redis", stack.options.redis_url, "--redis-prefix", stack.redis_prefix + "apollo:",
            "--database", _node_url(stack.apollo_database_url)]


async def _audit_rows(stack: Stack) -> int:
    connection = await asyncpg.connect(_node_url(stack.apollo_database_url))
    try:
        return int(await connection.fetchval("SELECT count(*) FROM audit"))
    finally:
        await connection.close()


async def peers(cfg: RunConfig, procs: Processes, tmp: Path, dataset: Dataset,
                bodies: list[str], results: Results) -> None:
    """The raw Starlette and Apollo Server 5 peers, one after the other, then stopped."""
    data = _peer_data(tmp, dataset)
    sample = json.loads(bodies[0])
    apollo_dir = ROOT / "bench" / "peers" / "apollo"
    node = _node()
    npm_ci(apollo_dir)
    # (key, label, workers, processes started, argv, cwd): the Starlette peer is one uvicorn
    # process per worker on a SO_REUSEPORT port, like the hub; Apollo forks its own workers.
    peers_to_run = [
        ("starlette", f"raw Starlette ({cfg.workers} workers)", cfg.workers, cfg.workers,
         [sys.executable, "-m", "bench.peers.starlette_peer", "--data", str(data)], ROOT),
        ("apollo", f"Apollo Server 5 ({cfg.workers} workers)", cfg.workers, 1,
         _apollo_argv(node, data, cfg.workers), apollo_dir),
        ("apollo-1", "Apollo Server 5 (1 process)", 1, 1, _apollo_argv(node, data, 1),
         apollo_dir),
    ]
    for key, label, workers, processes, argv, cwd in peers_to_run:
        print(f"peer: {label}", flush=True)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        names = await _start_peer(procs, tmp, key, [*argv, "--port", str(port)], workers,
                                  processes, cwd, url + "/graphql", sample)
        await expect_validity(url, dataset, {}, f"the {label} peer")
        figures = await load(cfg, url, bodies, {})
        results.add(key, f"peer: {label}", figures, "validity from memory")
        for name in names:
            await procs.stop(name)


async def _demo_headers(url: str, data_dir: Path) -> dict[str, str]:
    """A fresh token of the validity client from the demo's own clients file, with its purpose."""
    client, purpose = VALIDITY_CLIENT
    clients = json.loads((data_dir / "demo" / "clients.json").read_text())
    secret = next(c["client_secret"] for c in clients if c["client_id"] == client)
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.post(url + "/oauth/token", data={"grant_type": "client_credentials"},
                                   auth=(client, secret))
    if response.status_code != 200:
        raise StartFailed(f"hub demo: no token for {client}: {response.text[:300]}")
    return _headers(response.json()["access_token"], purpose)


async def embedded(cfg: RunConfig, procs: Processes, tmp: Path, dataset: Dataset,
                   bodies: list[str], results: Results, seed: int, foreigners: int) -> None:
    """`hub demo` (the embedded default: one process, SQLite, in-process cache and simulators)
    against Apollo Server 5 in one process, in turns, Apollo first (see `turns` for why)."""
    apollo_dir = ROOT / "bench" / "peers" / "apollo"
    npm_ci(apollo_dir)
    port = free_port()
    apollo_url = f"http://127.0.0.1:{port}"
    (apollo,) = await _start_peer(
        procs, tmp, "apollo-embedded",
        [*_apollo_argv(_node(), _peer_data(tmp, dataset), 1), "--port", str(port)], 1, 1,
        apollo_dir, apollo_url + "/graphql", json.loads(bodies[0]),
    )
    port = free_port()
    demo_url = f"http://127.0.0.1:{port}"
    data_dir = tmp / "demo"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    # Raised out of reach, as for the hub's stack: still checked on every request.
    env |= {"HUB_RATE_LIMIT_PER_MINUTE": UNREACHABLE_LIMIT,
            "HUB_COST_BUDGET_PER_MINUTE": UNREACHABLE_LIMIT, "PYTHONPATH": str(ROOT)}
    demo = procs.start("hub-demo", [str(BIN / "hub"), "demo", "--port", str(port), "--data-dir",
                                    str(data_dir), "--seed", str(seed), "--foreigners",
                                    str(foreigners)], env, ROOT)
    await procs.wait_ready(demo, None, 1, demo_url + "/readyz", timeout=180)
    await expect_validity(demo_url, dataset, await _demo_headers(demo_url, data_dir), "hub demo")
    ratios = []
    for turn in range(1, (2 if cfg.quick else TURNS) + 1):
        print(f"embedded, turn {turn}: Apollo Server 5 (1 process), then hub demo", flush=True)
        one = results.add(f"embedded-apollo-{turn}", f"  Apollo Server 5 (1 process), turn {turn}",
                          await load(cfg, apollo_url, bodies, {},
                                     servers=[procs.children[apollo].pid]),
                          "validity from memory")
        headers = await _demo_headers(demo_url, data_dir)
        # One pass first: every permit of the run in the demo's in-process cache.
        await load(cfg, demo_url, bodies, headers, once=True, warmup=0, duration=60)
        hub = results.add(f"embedded-hub-{turn}", f"  hub demo (1 process), turn {turn}",
                          await load(cfg, demo_url, bodies, headers, servers=[demo.pid]),
                          "SQLite audit, in-process cache and simulators")
        ratios.append(hub.rps / one.rps if one.rps else 0.0)
    await procs.stop("hub-demo")
    await procs.stop(apollo)
    results.extra["embedded_ratios"] = ratios


# ---- the hub ------------------------------------------------------------------------------------


async def _validity_run(
    cfg: RunConfig, stack: Stack, results: Results, key: str, label: str, note: str = "",
) -> Figures:
    assert stack.hub is not None
    client, purpose = VALIDITY_CLIENT
    headers = _headers((await stack.tokens(client))[client], purpose)
    await expect_validity(stack.hub.url, stack.dataset, headers, f"the hub ({label})")
    bodies = validity_bodies(stack.dataset)
    await _prime(cfg, stack, bodies, headers)
    figures = await load(cfg, stack.hub.url, bodies, headers, servers=stack.hub.worker_pids)
    calls = await _wms_calls(stack)
    note = f"{note}; {calls} WMS calls" if note else f"{calls} WMS calls"
    return results.add(key, label, figures, note)


async def _wms_calls(stack: Stack, reset: bool = True) -> int:
    """Requests the WMS simulator served since the last reset (cache misses), then reset."""
    async with httpx.AsyncClient(timeout=10) as client:
        total = int((await client.get(stack.wms_url + "/_sim/stats")).json()["total"])
        if reset:
            await client.post(stack.wms_url + "/_sim/stats/reset")
    return total


async def _prime(
    cfg: RunConfig, stack: Stack, bodies: list[str], headers: dict[str, str]
) -> None:
    """Fill the permit cache afresh: a pass over every permit after dropping what is cached.

    Entries are written with a 30 s TTL and a hit does not renew them, so entries left by an
    earlier run would expire in the middle of the next window. Dropped and rewritten here, they
    all outlive the window: it measures token check, policy, cache hit and audit commit.
    """
    assert stack.hub is not None
    await stack.drop_permit_cache()
    await load(cfg, stack.hub.url, bodies, headers, once=True, warmup=0, duration=60)
    await _wms_calls(stack)  # from here on, a WMS call is a cache miss in the window


async def validity(cfg: RunConfig, stack: Stack, results: Results) -> None:
    assert stack.hub is not None
    print(f"hub: validity ({stack.hub.label}, {cfg.workers} workers)", flush=True)
    await _validity_run(cfg, stack, results, "validity", f"validity ({stack.hub.label})",
                        "closed loop, permit cache warm")


async def turns(cfg: RunConfig, stack: Stack, results: Results) -> None:
    """The hub's validity against Apollo Server 5 (same workers), in alternating runs.

    On this kind of shared machine the throughput of the same server drifts by up to 2x from
    one minute to the next (seen here in one `make bench`: the hub's validity with tracing off
    at 1,243 and 1,731 req/s in two runs a minute apart; Apollo's at 3,126 and 7,708 req/s in
    two runs of the same morning), so a ratio of two runs minutes apart measures the drift as
    much as the servers. Here Apollo runs beside the hub's stack and the two take
    turns, Apollo first; the ratio printed is the median of the pairs'.
    """
    assert stack.hub is not None
    apollo_dir = ROOT / "bench" / "peers" / "apollo"
    npm_ci(apollo_dir)
    node, data = _node(), _peer_data(stack.tmp, stack.dataset)
    bodies = validity_bodies(stack.dataset)
    client, purpose = VALIDITY_CLIENT
    peers = {}
    for key, label, argv in (
        ("apollo", "Apollo Server 5 (bare)", _apollo_argv(node, data, cfg.workers)),
        ("samework", "Apollo Server 5 doing the hub's work",
         _samework_argv(node, data, cfg.workers, stack)),
    ):
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        headers = _headers((await stack.tokens(client))[client], purpose)
        (name,) = await _start_peer(stack.procs, stack.tmp, f"{key}-turns", [*argv, "--port",
                                    str(port)], cfg.workers, 1, apollo_dir, url + "/graphql",
                                    json.loads(bodies[0]), headers)
        await expect_validity(url, stack.dataset, headers, f"the {label} peer (turns)")
        peers[key] = (name, stack.procs.children[name].pid, url)
    ratios, same_work_ratios, requests = [], [], 0
    for turn in range(1, (2 if cfg.quick else TURNS) + 1):
        print(f"turn {turn}: Apollo Server 5 bare, Apollo doing the hub's work"
              f" ({cfg.workers} workers), then the hub", flush=True)
        headers = _headers((await stack.tokens(client))[client], purpose)
        _, pid, url = peers["apollo"]
        apollo = results.add(f"turn-apollo-{turn}", f"  Apollo Server 5 bare, turn {turn}",
                             await load(cfg, url, bodies, {}, servers=[pid]),
                             "validity from memory")
        _, pid, url = peers["samework"]
        same = results.add(
            f"turn-samework-{turn}", f"  Apollo doing the hub's work, turn {turn}",
            await load(cfg, url, bodies, headers, servers=[pid]),
            "JWKS token check, purpose, 1 Redis round trip, audit INSERT",
        )
        requests += same.requests
        hub = await _validity_run(cfg, stack, results, f"turn-hub-{turn}",
                                  f"  hub validity, turn {turn}", "right after Apollo's runs")
        ratios.append(hub.rps / apollo.rps if apollo.rps else 0.0)
        same_work_ratios.append(hub.rps / same.rps if same.rps else 0.0)
    rows = await _audit_rows(stack)
    results.notes.append(
        f"turns: the same-work Apollo peer (bench/peers/apollo/samework.mjs) wrote {rows:,} audit"
        f" rows to PostgreSQL (its measured runs answered {requests:,} requests; its warm-ups"
        " and start-up checks write rows too)."
    )
    for name, _, _ in peers.values():
        await stack.procs.stop(name)
    results.extra["turn_ratios"] = ratios
    results.extra["same_work_ratios"] = same_work_ratios


async def half_load(cfg: RunConfig, stack: Stack, results: Results) -> None:
    assert stack.hub is not None
    peak = results.figures["validity"].rps
    rate = peak / 2
    print(f"hub: validity at half its peak ({rate:.0f} req/s, open loop)", flush=True)
    client, purpose = VALIDITY_CLIENT
    headers = _headers((await stack.tokens(client))[client], purpose)
    bodies = validity_bodies(stack.dataset)
    await _prime(cfg, stack, bodies, headers)
    alone = await load(cfg, stack.hub.url, bodies, headers, connections=1,
                       duration=cfg.duration / 2, servers=stack.hub.worker_pids)
    results.add("alone", "validity, 1 request in flight", alone,
                "closed loop, 1 connection: the latency floor")
    figures = await load(cfg, stack.hub.url, bodies, headers, rate=rate,
                         connections=max(64, cfg.connections), servers=stack.hub.worker_pids)
    results.add("half", f"validity @ half peak ({rate:.0f} req/s)", figures,
                "open loop; latency from the scheduled send time")


async def batch(cfg: RunConfig, stack: Stack, results: Results) -> None:
    assert stack.hub is not None
    print("hub: batch of 500 (permits + enrollment { ssn } + cards { status })", flush=True)
    refused_client, refused_purpose = REFUSED_BATCH_CLIENT
    client, purpose = BATCH_CLIENT
    tokens = await stack.tokens(client, refused_client)
    pages = batch_pages(stack.dataset, PAGE)
    bodies = [_body(BATCH, {"ns": page}, "Batch") for page in pages]
    status, _ = await post(stack.hub.url, bodies[0],
                           _headers(tokens[refused_client], refused_purpose))
    results.notes.append(
        f"batch: {refused_client} lacks card:status, so the hub refuses its batch document"
        f" whole (HTTP {status}); the batch rows are asked by {client} (scopes"
        " permit:validity enrollment:read card:status), which may select all of it."
    )
    headers = _headers(tokens[client], purpose)
    status, answer = await post(stack.hub.url, bodies[0], headers)
    if status != 200 or "errors" in answer or len(answer["data"]["permits"]) != PAGE:
        raise StartFailed(f"the hub's batch answer is wrong: {status} {str(answer)[:300]}")
    figures = await load(cfg, stack.hub.url, bodies, headers, connections=cfg.workers,
                         servers=stack.hub.worker_pids)
    results.add("batch", f"batch 500 ({cfg.workers} in flight)", figures,
                f"{client}; {len(pages)} distinct pages")


async def _job(client: httpx.AsyncClient, url: str, pages: list[list[str]],
               headers: dict[str, str], in_flight: int) -> float:
    """Seconds to fetch every page, `in_flight` at a time (the client's paging)."""
    gate = asyncio.Semaphore(in_flight)

    async def page(numbers: list[str]) -> None:
        async with gate:
            response = await client.post(url + "/graphql", headers=headers,
                                         content=_body(BATCH, {"ns": numbers}, "Batch"))
            if response.status_code != 200 or b'"errors"' in response.content:
                raise StartFailed(f"batch page failed: {response.text[:300]}")

    started = time.perf_counter()
    await asyncio.gather(*(page(p) for p in pages))
    return time.perf_counter() - started


async def cost_growth(cfg: RunConfig, stack: Stack, results: Results) -> None:
    """Time per permit for jobs of 50, 500 and 5,000 permits (the last in pages of 500)."""
    assert stack.hub is not None
    print("hub: cost growth, batch jobs of 50, 500 and 5,000 permits", flush=True)
    client_id, purpose = BATCH_CLIENT
    headers = {**_headers((await stack.tokens(client_id))[client_id], purpose),
               "content-type": "application/json"}
    numbers = sorted(stack.dataset.permits)
    jobs = 3 if cfg.quick else 6
    per_permit: dict[int, float] = {}
    async with httpx.AsyncClient(timeout=60) as client:
        for size in (50, 500, 5000):
            if size > len(numbers):
                results.notes.append(f"cost growth: only {len(numbers)} permits; {size} skipped")
                continue
            times = []
            for j in range(jobs + 1):  # the first job of each size warms up, unmeasured
                start = (j * size) % (len(numbers) - size + 1)
                chosen = numbers[start : start + size]
                pages = [chosen[i : i + PAGE] for i in range(0, size, PAGE)]
                seconds = await _job(client, stack.hub.url, pages, headers, cfg.workers)
                if j:
                    times.append(seconds)
            job = statistics.median(times)
            per_permit[size] = job / size
            results.rows.append(Row(
                f"cost growth: batch of {size:,}",
                value=f"{job * 1000:8.1f} ms per job   {job / size * 1e6:7.1f} µs per permit",
                note=f"median of {jobs} jobs; pages of {PAGE}, {cfg.workers} in flight",
            ))
            print(f"  batch of {size:>5,}: {job * 1000:.1f} ms per job,"
                  f" {job / size * 1e6:.1f} µs per permit", flush=True)
    results.extra["growth"] = per_permit


async def enroll(cfg: RunConfig, stack: Stack, results: Results) -> None:
    assert stack.hub is not None
    bodies = enroll_bodies(stack.dataset)
    print(f"hub: enroll (registerEnrollment; {len(bodies)} fresh VALID permits)", flush=True)
    client, purpose = ENROLL_CLIENT
    headers = _headers((await stack.tokens(client))[client], purpose)
    figures = await load(cfg, stack.hub.url, bodies, headers, once=True,
                         connections=min(cfg.connections, 16), warmup=0)
    results.add("enroll", "enroll (registerEnrollment)", figures,
                f"each of {len(bodies)} fresh permits once; 16 in flight")


async def _set_faults(cards_url: str, faults: dict[str, Any] | None) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        if faults is None:
            response = await client.delete(cards_url + "/_sim/faults")
        else:
            response = await client.post(cards_url + "/_sim/faults", json=faults)
        response.raise_for_status()


async def card_system_down(cfg: RunConfig, stack: Stack, results: Results) -> None:
    """Issue 6: p50 of validity (WMS only) with the card system hung, against all up."""
    assert stack.hub is not None
    rate = results.figures["validity"].rps / 2 if "validity" in results.figures else 200.0
    background_rate = BACKGROUND_CARD_QUERIES
    print(f"hub: validity at {rate:.0f} req/s beside {background_rate:.0f} req/s of card"
          " queries, card system up, then hung", flush=True)
    validity_client, validity_purpose = VALIDITY_CLIENT
    card_client, card_purpose = CARD_CLIENT
    tokens = await stack.tokens(validity_client, card_client)
    measured = validity_bodies(stack.dataset)
    background = card_check_bodies(stack.dataset)
    v_headers = _headers(tokens[validity_client], validity_purpose)
    c_headers = _headers(tokens[card_client], card_purpose)
    figures: dict[str, Figures] = {}
    for state in ("up", "hung"):
        await _prime(cfg, stack, measured, v_headers)
        await _set_faults(stack.cards_url, {"hang": True} if state == "hung" else None)
        try:
            main, side = await asyncio.gather(
                load(cfg, stack.hub.url, measured, v_headers, rate=rate, connections=64),
                load(cfg, stack.hub.url, background, c_headers, rate=background_rate,
                     connections=64, marker="UPSTREAM_"),
            )
        finally:
            await _set_faults(stack.cards_url, None)
        figures[state] = main
        label = "card system up" if state == "up" else "card system hung"
        results.add(f"faults-{state}", f"validity, {label}", main,
                    f"open loop {rate:.0f}/s; beside card queries")
        side_statuses = Counter(side.statuses)
        results.rows.append(Row(
            f"  card queries beside it ({label})", side,
            note=f"{background_rate:.0f}/s open loop; errors = answers with UPSTREAM_*;"
                 f" HTTP {dict(side_statuses)}",
        ))
        print(f"  card queries ({label}): {side.line()}", flush=True)
    results.extra["faults"] = figures
    await asyncio.sleep(1)


async def profile(cfg: RunConfig, stack: Stack, results: Results) -> None:
    """py-spy on one hub worker while `validity` runs at its peak; the raw stacks are kept."""
    assert stack.hub is not None
    py_spy = BIN / "py-spy"
    if not py_spy.exists():
        results.notes.append("profile: py-spy is not installed (pip install -e '.[bench]')")
        return
    print("hub: profiling one worker under validity load (py-spy)", flush=True)
    PROFILE_DIR.mkdir(parents=True, exist_ok=True)
    out = PROFILE_DIR / "profile-validity.txt"
    client, purpose = VALIDITY_CLIENT
    headers = _headers((await stack.tokens(client))[client], purpose)
    seconds = max(3, round(cfg.duration))
    bodies = validity_bodies(stack.dataset)
    await _prime(cfg, stack, bodies, headers)
    load_run = asyncio.ensure_future(
        load(cfg, stack.hub.url, bodies, headers, duration=seconds + 2, warmup=0)
    )
    await asyncio.sleep(1)
    # Blocking sampling (py-spy pauses the worker 200 times a second): complete async stacks,
    # at a cost of a few per cent of the worker's throughput while it records.
    recorder = await asyncio.create_subprocess_exec(
        str(py_spy), "record", "--pid", str(stack.hub.worker_pids[0]), "--rate", "200",
        "--duration", str(seconds), "--full-filenames", "--format", "raw",
        "--output", str(out),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )
    await load_run
    _, err = await recorder.communicate()
    results.extra["profile_wms_calls"] = await _wms_calls(stack)
    if recorder.returncode != 0 or not out.exists():
        results.notes.append(f"profile: py-spy failed: {err.decode()[-300:]}")
        return
    results.extra["profile"] = out


async def servers(cfg: RunConfig, stack: Stack, results: Results) -> None:
    """uvicorn as `hub serve` runs it, uvicorn without its access log, and granian, in turns.

    Each turn runs the three one after the other (a fresh hub each), and each ratio printed
    is the median of the turns': compared with the `validity` run minutes earlier, a ratio
    would carry the machine's drift (see `turns`).
    """
    modes = (("uvicorn", True, "uvicorn"), ("uvicorn", False, "uvicorn-quiet"),
             ("granian", False, "granian"))
    rps: dict[str, list[float]] = {key: [] for _, _, key in modes}
    for turn in range(1, (1 if cfg.quick else TURNS) + 1):
        for server, access_log, key in modes:
            hub = await stack.start_hub(server, access_log=access_log)
            print(f"hub: validity under {hub.label}, turn {turn}", flush=True)
            figures = await _validity_run(
                cfg, stack, results, f"{key}-{turn}", f"validity ({hub.label}) #{turn}",
                "no access log" if server == "granian" else "",
            )
            rps[key].append(figures.rps)
    results.extra["servers"] = rps


TRACING_FIELDS = {"tracing", "tracing_exporter", "tracing_endpoint", "tracing_sample_ratio"}


async def tracing(cfg: RunConfig, stack: Stack, results: Results) -> None:
    """Validity throughput with tracing on at the default ratio and at 1.0, against off."""
    from hub.settings import Settings

    if not set(Settings.model_fields) >= TRACING_FIELDS:
        results.notes.append("tracing: tracing settings not available (HUB_TRACING, "
                             "HUB_TRACING_EXPORTER, ...): issue 7's ratio not measured")
        print("tracing settings not available", flush=True)
        return
    port = free_port()
    ready = stack.tmp / "ready-sink"
    ready.mkdir()
    sink = stack.procs.start("otlp-sink", [sys.executable, "-m", "bench._sink", "--port",
                                           str(port), "--ready-dir", str(ready)], cwd=ROOT)
    sink_url = f"http://127.0.0.1:{port}"
    await stack.procs.wait_ready(sink, ready, 1, sink_url + "/stats")
    exporting = {"HUB_TRACING": "on", "HUB_TRACING_EXPORTER": "otlp-http",
                 "HUB_TRACING_ENDPOINT": sink_url + "/v1/traces"}
    modes = {
        "off": {"HUB_TRACING": "off"},
        "default": exporting,  # the default sampling ratio
        "on": {**exporting, "HUB_TRACING_SAMPLE_RATIO": "1.0"},
    }
    # Off and on in turn, more than once: on this kind of shared machine a run's throughput
    # drifts by more than tracing costs, and one pair in a fixed order measured the drift too.
    ratios, default_ratios = [], []
    for turn in range(1 if cfg.quick else TRACING_TURNS):
        rps = {}
        for mode, env in modes.items():
            hub = await stack.start_hub("uvicorn", extra_env=env)
            print(f"hub: validity with tracing {mode} ({hub.label}), turn {turn + 1}", flush=True)
            note = {"off": "", "default": "default sampling, OTLP/HTTP to a local sink",
                    "on": "sampling 1.0, OTLP/HTTP to a local sink"}[mode]
            figures = await _validity_run(
                cfg, stack, results, f"tracing-{mode}",
                f"validity, tracing {mode} ({hub.label}) #{turn + 1}", note,
            )
            rps[mode] = figures.rps
        ratios.append(rps["on"] / rps["off"] if rps["off"] else 0.0)
        default_ratios.append(rps["default"] / rps["off"] if rps["off"] else 0.0)
    results.extra["tracing_ratios"] = ratios
    results.extra["tracing_default_ratios"] = default_ratios
    await stack.stop_hub()  # flushes the last span batches
    async with httpx.AsyncClient() as client:
        received = (await client.get(sink_url + "/stats")).json()
    results.extra["sink"] = received
    await stack.procs.stop("otlp-sink")
