"""Appends per second to the audit log: group commit against one commit per append.

    python -m bench.audit_commit [--database-url postgresql+asyncpg://...] [--seconds 4]

64 concurrent writers (as many requests in flight) append for a fixed time in each mode, on a
fresh SQLite file and, given `--database-url`, on a fresh PostgreSQL database created beside the
one named (and dropped afterwards). Every run ends by verifying the chain it wrote.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

from hub.database import create_engine
from observability.audit import AuditEvent, AuditLog, LocalSigner, audit_metadata

WRITERS = 64


def _event(n: int) -> AuditEvent:
    return AuditEvent(
        time=datetime.now(UTC), kind="graphql", outcome="OK", client_id="bench",
        agency="bench", purpose="enrollment", operation="Bench", document_hash="0" * 64,
        fields=("Query.permit", "WorkPermit.number"), subjects=(f"{n:018d}",),
        trace_id=f"{n:032x}", response_sha256="0" * 64,
    )


async def _writer(log: AuditLog, deadline: float, counter: list[int]) -> None:
    while time.perf_counter() < deadline:
        counter[0] += 1
        await log.append(_event(counter[0]))


async def measure(url: str, group_commit: bool, seconds: float) -> tuple[float, int]:
    """Appends per second, and the number of commits it took."""
    engine = create_engine(url)  # the hub's own engine settings (pool, SQLite WAL + busy timeout)
    async with engine.begin() as conn:
        await conn.run_sync(audit_metadata.create_all)
    log = AuditLog(engine, LocalSigner(), group_commit=group_commit)
    await log.start()
    started = time.perf_counter()
    counter = [0]
    await asyncio.gather(*(_writer(log, started + seconds, counter) for _ in range(WRITERS)))
    elapsed = time.perf_counter() - started
    await log.close()
    result = await log.verify()
    await engine.dispose()
    if not result.ok:
        raise SystemExit(f"chain broken at seq {result.first_bad_seq}: {result.reason}")
    return log.stats.records / elapsed, log.stats.commits


@asynccontextmanager
async def fresh_postgres(url: str) -> AsyncIterator[str]:
    name = f"bench_audit_{uuid.uuid4().hex[:10]}"
    admin_dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    admin = await asyncpg.connect(admin_dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(url).set(database=name).render_as_string(hide_password=False)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@asynccontextmanager
async def fresh_sqlite(directory: Path) -> AsyncIterator[str]:
    yield f"sqlite+aiosqlite:///{directory / f'audit-{uuid.uuid4().hex[:8]}.db'}"


async def compare(
    label: str, fresh: Callable[[], AbstractAsyncContextManager[str]], seconds: float
) -> None:
    figures: dict[bool, float] = {}
    for group_commit in (True, False):
        async with fresh() as url:
            rate, commits = await measure(url, group_commit, seconds)
        figures[group_commit] = rate
        mode = "group commit     " if group_commit else "commit per append"
        print(f"{label:10} {mode}  {rate:9.0f} appends/s  ({commits} commits)")
    print(f"{label:10} ratio              {figures[True] / figures[False]:9.1f}x\n")


async def collect(database_url: str | None, seconds: float) -> list[tuple[str, float, float]]:
    """(label, group commit appends/s, commit-per-append appends/s) for SQLite and PostgreSQL."""
    figures = []
    with tempfile.TemporaryDirectory() as directory:
        backends: list[tuple[str, Callable[[], AbstractAsyncContextManager[str]]]] = [
            ("sqlite", lambda: fresh_sqlite(Path(directory)))
        ]
        if database_url:
            backends.append(("postgresql", lambda: fresh_postgres(database_url)))
        for label, fresh in backends:
            rates = []
            for group_commit in (True, False):
                async with fresh() as url:
                    rates.append((await measure(url, group_commit, seconds))[0])
            figures.append((label, rates[0], rates[1]))
    return figures


async def main() -> None:
    parser = argparse.ArgumentParser(description="audit log appends/s, group commit or not")
    parser.add_argument("--database-url", help="a PostgreSQL URL (postgresql+asyncpg://...)")
    parser.add_argument("--seconds", type=float, default=4.0, help="per run (4 runs at most)")
    args = parser.parse_args()
    print(f"{WRITERS} concurrent writers, {args.seconds:g} s per run\n")
    with tempfile.TemporaryDirectory() as directory:
        await compare("sqlite", lambda: fresh_sqlite(Path(directory)), args.seconds)
    if args.database_url:
        await compare("postgresql", lambda: fresh_postgres(args.database_url), args.seconds)


if __name__ == "__main__":
    asyncio.run(main())
