"""Token-endpoint flood: memory and latency of a real `hub demo` under bad client credentials.

    .venv/bin/python -m bench.token_flood [--loops 60] [--seconds 20] [--port 8790]

Starts `hub demo` (the venv's entry point, real argon2 cost unless `HUB_SECRET_HASH_*` say
otherwise) in a temporary directory, then runs `--loops` concurrent loops posting a client
credentials request with an unknown client id and a wrong secret, for `--seconds`. Meanwhile it
samples the hub process's RSS every half second and times one demo agency's GraphQL request
every second. Prints the figures; asserts nothing (figures are for the report, not the suite).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def _wait_ready(base: str, clients_file: Path, deadline: float) -> None:
    async with httpx.AsyncClient() as http:
        while time.monotonic() < deadline:
            try:
                up = (await http.get(base + "/healthz")).status_code < 500
                if up and clients_file.exists():  # noqa: ASYNC240 (a harness, not the hub)
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.5)
    raise SystemExit("hub demo did not start")


async def _flood(
    http: httpx.AsyncClient, base: str, stop: float, counts: collections.Counter[str]
) -> None:
    while time.monotonic() < stop:
        form = {"grant_type": "client_credentials"}
        try:
            response = await http.post(
                base + "/oauth/token", data=form, auth=("no-such-agency", secrets.token_hex(8))
            )
            counts[str(response.status_code)] += 1
        except httpx.HTTPError as exc:
            counts[type(exc).__name__] += 1


async def _legit(base: str, client: dict[str, str], stop: float, out: list[float]) -> str:
    # Another address than the flood's (loopback is all of 127/8): an agency's own gateway.
    transport = httpx.AsyncHTTPTransport(local_address="127.0.0.2")
    async with httpx.AsyncClient(timeout=30, transport=transport) as http:
        started = time.perf_counter()
        try:
            response = await http.post(
                base + "/oauth/token", data={"grant_type": "client_credentials"},
                auth=(client["client_id"], client["client_secret"]),
            )
        except httpx.HTTPError as exc:
            waited = time.perf_counter() - started
            return f"legitimate token request: {type(exc).__name__} after {waited:.0f} s"
        took = time.perf_counter() - started
        if response.status_code != 200:
            return f"legitimate token request: {response.status_code} {response.text[:120]}"
        out.append(-took)  # negative: the token request's time, told apart below
        headers = {"Authorization": f"Bearer {response.json()['access_token']}",
                   "X-Purpose-Of-Use": sorted(client["purposes"])[0]}
        while time.monotonic() < stop:
            started = time.perf_counter()
            with contextlib.suppress(httpx.HTTPError):  # a timeout counts as the time taken
                await http.post(
                    base + "/graphql", json={"query": "{ __typename }"}, headers=headers
                )
            out.append(time.perf_counter() - started)
            await asyncio.sleep(1.0)
        try:
            late = await http.post(
                base + "/oauth/token", data={"grant_type": "client_credentials"},
                auth=(client["client_id"], client["client_secret"]),
            )
        except httpx.HTTPError as exc:
            return f"legitimate token request at the end of the flood: {type(exc).__name__}"
        return f"legitimate token request at the end of the flood: {late.status_code}"


async def _measure(pid: int, base: str, client: dict[str, str], args: argparse.Namespace) -> None:
    await asyncio.sleep(2.0)
    baseline = _rss_mib(pid)
    idle: list[float] = []
    await _legit(base, client, time.monotonic() + 3, idle)
    stop = time.monotonic() + args.seconds
    counts: collections.Counter[str] = collections.Counter()
    latencies: list[float] = []
    samples: list[float] = []
    # One client for every loop: sixty clients would each build an SSL context, and the
    # harness, starved of CPU by the hub's hashing, would measure itself.
    limits = httpx.Limits(max_connections=args.loops, max_keepalive_connections=args.loops)
    flood = httpx.AsyncClient(timeout=60, limits=limits)
    tasks = [asyncio.create_task(_flood(flood, base, stop, counts)) for _ in range(args.loops)]
    legit = asyncio.create_task(_legit(base, client, stop, latencies))
    while time.monotonic() < stop:
        samples.append(_rss_mib(pid))
        await asyncio.sleep(0.5)
    await asyncio.gather(*tasks)
    await flood.aclose()
    outcome = await legit
    print(f"hub RSS before flood: {baseline:.0f} MiB")
    print(f"hub RSS during flood: peak {max(samples):.0f} MiB, last {samples[-1]:.0f} MiB")
    print(f"flood answers ({args.loops} loops, {args.seconds:.0f} s): {dict(counts)}")
    idle = [t for t in idle if t >= 0]
    if idle:
        print(f"/graphql idle: median {statistics.median(idle) * 1000:.0f} ms")
    token_times = [-t for t in latencies if t < 0]
    latencies = [t for t in latencies if t >= 0]
    if token_times:
        print(f"legitimate token request (another address) during flood: {token_times[0]:.2f} s")
    if latencies:
        print(f"/graphql during flood: median {statistics.median(latencies) * 1000:.0f} ms, "
              f"max {max(latencies) * 1000:.0f} ms ({len(latencies)} requests)")
    print(outcome)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--loops", type=int, default=60)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--port", type=int, default=8790)
    args = parser.parse_args()
    hub = Path(sys.executable).with_name("hub")
    with tempfile.TemporaryDirectory() as tmp:
        command = [str(hub), "demo", "--port", str(args.port), "--data-dir", tmp,
                   "--foreigners", "200"]
        env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_TEST")}
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        try:
            base = f"http://127.0.0.1:{args.port}"
            clients_file = Path(tmp) / "demo" / "clients.json"
            asyncio.run(_wait_ready(base, clients_file, time.monotonic() + 120))
            client = json.loads(clients_file.read_text())[0]
            asyncio.run(_measure(process.pid, base, client, args))
        finally:
            process.terminate()
            process.wait(timeout=30)


if __name__ == "__main__":
    main()
