"""`make bench`: the end-to-end benchmark of issue 8 (with the bench items of issues 6 and 7).

    python -m bench [--database-url URL] [--only NAME[,NAME...]] [--duration S] [--quick]

Scenarios, in the order they run (`--only` takes any of these names):

    ceiling   the load generator against a server that does nothing: its ceiling
    peers     raw Starlette and Apollo Server 5 (npm) answering `validity` from memory
    embedded  `hub demo` (one process) and Apollo Server 5 (one process) in alternating runs
    validity  exit-entry-wuhan checks one permit (the hub as `hub serve` runs it, uvicorn)
    turns     validity, bare Apollo Server 5 and Apollo doing the hub's work (JWKS token check,
              purpose, one Redis round trip, audit INSERT; bench/peers/apollo/samework.mjs),
              same workers, in alternating runs: fair ratios
    half      validity at half its peak rate, open loop: p99
    batch     `permits` for 500 numbers with enrollment { ssn } and cards { status }
    growth    batch jobs of 50, 500 and 5,000 permits (pages of 500): time per permit
    enroll    registerEnrollment writes
    faults    issue 6: validity p50 with the card system hung against all up
    profile   py-spy on one hub worker under validity load
    servers   validity under uvicorn with and without its access log, and granian, in turns
    tracing   issue 7: validity throughput with tracing on (sampling 1.0) against off
    audit     audit group commit against one commit per append (bench/audit_commit.py)

Everything runs as separate processes on 127.0.0.1 (see bench/_stack.py) and is torn down at
the end, on failure too. Exit status: 0 when every selected scenario ran, 2 when a server the
benchmark needs (the hub, a simulator, a peer) could not start, 1 on any other failure.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import signal
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from pathlib import Path

from bench import _scenarios as s
from bench import audit_commit
from bench._procs import Processes, StartFailed
from bench._report import render
from bench._stack import Options, open_stack
from simulators import generate

SCENARIOS = ("ceiling", "peers", "embedded", "validity", "turns", "half", "batch", "growth",
             "enroll", "faults", "profile", "servers", "tracing", "audit")
HUB_SCENARIOS = frozenset(SCENARIOS) - {"ceiling", "peers", "embedded", "audit"}
DEFAULT_DATABASE_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description="permit-hub against its peers, end to end",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL,
                        help="PostgreSQL (postgresql+asyncpg://...); fresh databases are made"
                             " beside it and dropped")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--only", help=f"comma-separated, of: {', '.join(SCENARIOS)}")
    parser.add_argument("--skip", help="comma-separated scenarios not to run")
    parser.add_argument("--duration", type=float, default=8.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds per run")
    parser.add_argument("--quick", action="store_true",
                        help="3 s runs after 1 s of warm-up, fewer batch jobs (about 3 minutes)")
    parser.add_argument("--connections", type=int, default=32,
                        help="connections of the closed-loop runs")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="hub (and peer) worker processes; default one per core")
    parser.add_argument("--generator-processes", type=int, default=1)
    parser.add_argument("--seed", type=int, default=2025)
    parser.add_argument("--foreigners", type=int, default=5000)
    parser.add_argument("--audit-seconds", type=float, default=4.0)
    parser.add_argument("--keep-logs", action="store_true",
                        help="keep the servers' logs (printed path) instead of deleting them")
    return parser


def _selected(args: argparse.Namespace) -> list[str]:
    chosen = set(SCENARIOS)
    if args.only:
        chosen = {name.strip() for name in args.only.split(",") if name.strip()}
    if args.skip:
        chosen -= {name.strip() for name in args.skip.split(",")}
    unknown = chosen - set(SCENARIOS)
    if unknown:
        raise SystemExit(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    if "half" in chosen or "faults" in chosen:
        chosen.add("validity")  # they run at half of its peak
    return [name for name in SCENARIOS if name in chosen]


async def _run(args: argparse.Namespace, selected: list[str], results: s.Results) -> None:
    cfg = s.RunConfig(
        duration=3.0 if args.quick else args.duration,
        warmup=1.0 if args.quick else args.warmup,
        connections=args.connections, workers=args.workers,
        generator_processes=args.generator_processes, quick=args.quick,
    )
    options = Options(args.database_url, args.redis_url, args.seed, args.foreigners,
                      args.workers, keep_logs=args.keep_logs)
    dataset = generate(seed=args.seed, foreigners=args.foreigners)
    bodies = s.validity_bodies(dataset)
    async with AsyncExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="permit-hub-peers-")))
        (tmp / "logs").mkdir()
        procs = Processes(tmp / "logs")
        stack.push_async_callback(procs.stop_all)
        if "ceiling" in selected:
            await s.ceiling(cfg, procs, tmp, bodies, results)
        if "peers" in selected:
            await s.peers(cfg, procs, tmp, dataset, bodies, results)
        if "embedded" in selected:
            await s.embedded(cfg, procs, tmp, dataset, bodies, results, args.seed,
                             args.foreigners)
    if HUB_SCENARIOS.intersection(selected):
        print("starting PostgreSQL databases, Redis prefix, simulators and the hub", flush=True)
        async with open_stack(options) as hub_stack:
            await hub_stack.start_hub("uvicorn")
            results.notes += [
                f"hub: {args.workers} workers of bench._hub_server (what `hub serve` does: uvicorn,"
                " log level info, its access log on) on one SO_REUSEPORT port; PostgreSQL audit"
                " store, Redis, agencies on PostgreSQL; rate limit and cost budget raised out of"
                " reach (still counted on every request, in the process, synced with Redis in the"
                " background; revocation judged on the local replica of the shared-state stream).",
                f"validity: exit-entry-wuhan, {s.VALIDITY_PERMITS:,} permits of every status in"
                " turn; the permit cache is filled afresh before each run, so the window is all"
                " cache hits (the WMS-call count in the notes shows it).",
            ]
            steps = {
                "validity": s.validity, "turns": s.turns, "half": s.half_load, "batch": s.batch,
                "growth": s.cost_growth, "enroll": s.enroll, "faults": s.card_system_down,
                "profile": s.profile, "servers": s.servers, "tracing": s.tracing,
            }
            for name in selected:
                if name in steps:
                    began = time.perf_counter()
                    await steps[name](cfg, hub_stack, results)
                    print(f"  ({name}: {time.perf_counter() - began:.0f} s)", flush=True)
    if "audit" in selected:
        print(f"audit log: group commit against one commit per append"
              f" ({args.audit_seconds:g} s per run)", flush=True)
        results.extra["audit"] = await audit_commit.collect(args.database_url, args.audit_seconds)


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # unwinds through every cleanup, as Ctrl-C does


def main() -> int:
    args = _parser().parse_args()
    selected = _selected(args)
    signal.signal(signal.SIGTERM, _terminate)
    results = s.Results()
    started = time.perf_counter()
    header = (f"permit-hub bench: {args.workers} workers on {os.cpu_count()} cores,"
              f" {platform.python_implementation()} {platform.python_version()};"
              f" {args.connections} connections closed loop;"
              f" {'3' if args.quick else f'{args.duration:g}'} s measured per run")
    print(header + f"\nscenarios: {', '.join(selected)}", flush=True)
    try:
        asyncio.run(_run(args, selected, results))
    except StartFailed as exc:
        print(f"\nbench: FAILED: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nbench: interrupted; everything it started has been stopped", file=sys.stderr)
        return 130
    header += f"; ran in {time.perf_counter() - started:.0f} s"
    table = render(results, header)
    print(table)
    s.PROFILE_DIR.mkdir(parents=True, exist_ok=True)
    (s.PROFILE_DIR / "last-run.txt").write_text(table + "\n")  # var/ is not committed
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
