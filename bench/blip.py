"""An agency-database blip under steady enrollment writes: how long are writes refused?

    python -m bench.blip [--database-url postgresql+asyncpg://...] [--rate 80] [--blip 0.14]
                         [--before 3] [--after 14]

One hub in this process (its app over ASGI, the WMS and card simulators over loopback HTTP),
the hub and agency databases fresh PostgreSQL databases beside the one named (dropped at the
end). `registerEnrollment` for a fresh permit of region 420100 is sent `--rate` times a second,
open loop (one started every 1/rate s whatever the answers); `--before` seconds in, that
region's database refuses connections and its sessions are killed (tests/services.py
`database_outage`) for `--blip` seconds. Printed: the blip as it really lasted, the writes
that failed, and those the circuit breaker refused without calling the database (its
"rejected" observations, the ones `/metrics` counts), by time from the start of the blip.
Figures, not a test: the suite asserts the same behaviour on an injected clock.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from asgi_lifespan import LifespanManager

from bench._stack import postgres_databases
from connectors.agency import SqlEnrollmentSource, create_agency_engines
from connectors.errors import UpstreamTimeout, UpstreamUnavailable
from connectors.records import NewEnrollment, Permit
from connectors.resilience import Guard
from hub.app import create_app
from hub.components import Hub
from hub.demo_clients import seed_demo_clients
from hub.settings import Settings
from simulators import (
    AGENCY_REGIONS,
    build_cards_app,
    build_wms_app,
    generate,
    seed_agency_databases,
)
from tests.services import database_outage
from tests.simulators.servers import serve

REGION = "420100"
CLIENT, PURPOSE = "si-agency-wuhan", "social-insurance-enrollment"
REGISTER = (
    "mutation Register($i: RegisterEnrollmentInput!) { registerEnrollment(input: $i) {"
    " created enrollment { ssn } } }"
)


@dataclass
class Run:
    """Times are seconds since the blip began (negative: before it)."""

    zero: float = 0.0
    blip_end: float = 0.0
    ok: list[float] = field(default_factory=list)
    failed: list[float] = field(default_factory=list)  # by start time of the write
    answered: list[float] = field(default_factory=list)  # when each failed write was answered
    latency: list[float] = field(default_factory=list)  # of the writes done before the blip
    refused: list[float] = field(default_factory=list)  # when the breaker refused it
    opened: list[float] = field(default_factory=list)  # breaker OPEN at a sample
    codes: dict[str, int] = field(default_factory=dict)  # error code -> failed writes

    def since(self) -> float:
        return time.perf_counter() - self.zero


Write = Callable[[Permit], Awaitable[str | None]]  # None: written, else the error code


def through_hub(http: httpx.AsyncClient, token: str) -> Write:
    """`registerEnrollment` as the agency sends it."""

    async def write(permit: Permit) -> str | None:
        given = {"permitNumber": permit.number, "region": REGION, "name": permit.holder.name,
                 "nationality": permit.holder.nationality,
                 "idempotencyKey": f"blip-{uuid.uuid4().hex}"}
        response = await http.post(
            "/graphql", json={"query": REGISTER, "variables": {"i": given}},
            headers={"authorization": f"Bearer {token}", "x-purpose-of-use": PURPOSE},
        )
        if response.status_code != 200:
            return str(response.status_code)
        errors = response.json().get("errors")
        return str(errors[0].get("extensions", {}).get("code")) if errors else None

    return write


def through_source(source: SqlEnrollmentSource, today: dt.date) -> Write:
    """The agency connector's `enroll`, as the hub calls it once the request is checked."""

    async def write(permit: Permit) -> str | None:
        key = f"blip-{uuid.uuid4().hex}"
        try:
            await source.enroll(NewEnrollment(
                permit_number=permit.number, region=REGION, holder=permit.holder,
                employer_credit_code=permit.employer.credit_code, enrolled_on=today,
                idempotency_key=key, request_hash=key,
            ))
        except UpstreamUnavailable:
            return "UPSTREAM_UNAVAILABLE"
        except UpstreamTimeout:
            return "UPSTREAM_TIMEOUT"
        return None

    return write


async def _one(write: Write, permit: Permit, run: Run) -> None:
    began = run.since()
    code = await write(permit)
    if code is None:
        run.ok.append(began)
        if began < 0:
            run.latency.append(run.since() - began)
    else:
        run.failed.append(began)
        run.answered.append(run.since())
        run.codes[code] = run.codes.get(code, 0) + 1


async def _drive(write: Write, guard: Guard, permits: list[Permit], args: argparse.Namespace,
                 database: str) -> Run:
    run = Run()
    guard.observers.append(
        lambda _u, result, _s: run.refused.append(run.since()) if result == "rejected" else None
    )
    run.zero = time.perf_counter() + args.before
    writes: list[asyncio.Task[None]] = []
    blip = asyncio.create_task(_blip(database, args, run))
    total = int((args.before + args.blip + args.after) * args.rate)
    started = time.perf_counter()
    for i, permit in enumerate(permits[:total]):
        await asyncio.sleep(max(0.0, started + i / args.rate - time.perf_counter()))
        writes.append(asyncio.create_task(_one(write, permit, run)))
        if guard.breaker_open:
            run.opened.append(run.since())
    await blip
    await asyncio.gather(*writes)
    return run


async def _blip(database: str, args: argparse.Namespace, run: Run) -> None:
    await asyncio.sleep(max(0.0, run.zero - time.perf_counter()))
    run.zero = time.perf_counter()  # the blip begins: ALTER DATABASE, sessions killed
    async with database_outage(database):
        await asyncio.sleep(args.blip)
    run.blip_end = run.since()


def _span(times: list[float]) -> str:
    if not times:
        return "none"
    return f"{len(times)}, from {times[0]:+.3f} s to {times[-1]:+.3f} s"


def report(name: str, run: Run) -> None:
    print(f"{name}:")
    print(f"  blip (database refusing connections): 0 to {run.blip_end:.3f} s")
    latency = sorted(run.latency) or [0.0]
    print(f"  before the blip, a write took {latency[len(latency) // 2] * 1000:.0f} ms (p50),"
          f" {latency[int(len(latency) * 0.99)] * 1000:.0f} ms (p99)")
    print(f"  writes ok {len(run.ok)}, failed {len(run.failed)}, refused by the breaker "
          f"{len(run.refused)}")
    print(f"  failed writes, by start:  {_span(sorted(run.failed))}; codes {run.codes}")
    print(f"  failed writes, by answer: {_span(sorted(run.answered))}")
    print(f"  refused by the breaker:   {_span(run.refused)}")
    print(f"  breaker seen open:        {_span(run.opened)}")
    bad = sorted(run.answered + run.refused)  # when the writer heard "no"
    if bad:
        print(f"  writes answered with a failure or refusal for {bad[-1] - bad[0]:.3f} s"
              f" ({bad[0]:+.3f} s to {bad[-1]:+.3f} s) against a blip of {run.blip_end:.3f} s")


async def main(args: argparse.Namespace) -> None:
    dataset = generate(seed=2025, foreigners=args.foreigners, today=dt.date.today())
    enrolled = {e.permit_number for e in dataset.enrollments.values()}
    permits = sorted(
        (p for p in dataset.permits.values()
         if p.is_valid_on(dataset.today) and p.work_location == REGION
         and p.number not in enrolled),
        key=lambda p: p.number,
    )
    needed = int((args.before + args.blip + args.after) * args.rate)
    if len(permits) < needed:
        raise SystemExit(f"{len(permits)} fresh permits for {needed} writes: raise --foreigners")
    roles = ["hub", *(f"agency{r}" for r in AGENCY_REGIONS)]
    async with (
        postgres_databases(args.database_url, roles) as urls,
        serve(build_wms_app(dataset)) as wms_url,
        serve(build_cards_app(dataset)) as cards_url,
    ):
        agencies = {r: urls[f"agency{r}"] for r in AGENCY_REGIONS}
        await seed_agency_databases(dataset, agencies)
        with tempfile.TemporaryDirectory() as tmp:
            settings = Settings(
                database_url=urls["hub"], data_dir=Path(tmp), wms_url=wms_url,
                cards_url=cards_url, agency_databases=agencies,
                issuer="http://127.0.0.1:8000", secret_hash_time_cost=1,
                secret_hash_memory_kib=1024, secret_hash_parallelism=1,  # as the suite's
                rate_limit_per_minute=int(args.rate * 120),  # the writer is one client
            )
            print(f"{args.rate:g} writes/s through the {args.via} for"
                  f" {args.before + args.blip + args.after:g} s, a {args.blip:g} s blip of"
                  f" agency {REGION}'s database at {args.before:g} s; breaker policy:"
                  f" {settings.upstream_policy('agency-' + REGION)}", flush=True)
            if args.via == "source":
                run = await _via_source(settings, dataset.today, permits, args)
            else:
                run = await _via_hub(settings, permits, args)
            report("agency-" + REGION, run)


async def _via_source(settings: Settings, today: dt.date, permits: list[Permit],
                      args: argparse.Namespace) -> Run:
    timeout = settings.upstream_timeout_seconds
    source = SqlEnrollmentSource(
        create_agency_engines(settings.agency_databases, timeout), timeout,
        policy_for=settings.upstream_policy,
    )
    try:
        write = through_source(source, today)
        return await _drive(write, source.guards[REGION], permits, args,
                            settings.agency_databases[REGION])
    finally:
        await source.close()


async def _via_hub(settings: Settings, permits: list[Permit], args: argparse.Namespace) -> Run:
    app = create_app(settings)
    async with LifespanManager(app, startup_timeout=60) as manager, httpx.AsyncClient(
        transport=httpx.ASGITransport(app=manager.app), base_url="http://127.0.0.1:8000",
        timeout=60,
    ) as http:
        hub: Hub = app.state.hub
        secrets = {str(c["client_id"]): str(c["client_secret"])
                   for c in await seed_demo_clients(hub.auth)}
        answer = await http.post("/oauth/token", data={"grant_type": "client_credentials"},
                                 auth=(CLIENT, secrets[CLIENT]))
        write = through_hub(http, answer.json()["access_token"])
        return await _drive(write, hub.enrollments.guards[REGION], permits, args,
                            settings.agency_databases[REGION])


def cli() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.blip", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url",
                        default="postgresql+asyncpg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--rate", type=float, default=80.0, help="writes a second")
    parser.add_argument("--blip", type=float, default=0.14, help="seconds the database is away")
    parser.add_argument("--before", type=float, default=3.0, help="seconds of writes before it")
    parser.add_argument("--after", type=float, default=14.0, help="seconds of writes after it")
    parser.add_argument("--via", choices=("hub", "source"), default="hub",
                        help="registerEnrollment through an in-process hub, or the agency"
                             " connector's enroll alone (lighter, for a loaded machine)")
    parser.add_argument("--foreigners", type=int, default=10_000, help="size of the dataset")
    asyncio.run(main(parser.parse_args()))


if __name__ == "__main__":
    cli()
