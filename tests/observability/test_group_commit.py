"""No audit, no data: appends return only once committed, in shared transactions, by every
instance at once; when the store is down every waiting append fails and nothing is half-written."""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from observability.audit import AuditLog, AuditRecord, AuditUnavailable, LocalSigner
from observability.audit._tables import records
from tests.observability.conftest import event, record_count
from tests.services import database_outage, terminate_sessions

ROOT = Path(__file__).resolve().parents[2]


async def test_200_concurrent_appends_share_transactions_and_chain(
    log: AuditLog, engine: AsyncEngine
) -> None:
    stored = await asyncio.gather(*(log.append(event(i)) for i in range(200)))

    assert sorted(r.seq for r in stored) == list(range(1, 201))
    assert await record_count(engine) == 200
    assert (await log.verify()).ok
    assert log.stats.records == 200
    assert log.stats.commits < 200


async def test_without_group_commit_each_append_commits_alone(
    engine: AsyncEngine, signer: LocalSigner
) -> None:
    log = AuditLog(engine, signer, group_commit=False)
    await log.start()
    await asyncio.gather(*(log.append(event(i)) for i in range(20)))
    await log.close()

    assert (log.stats.records, log.stats.commits) == (20, 20)
    assert (await log.verify()).ok


async def test_append_returns_the_committed_record(log: AuditLog) -> None:
    record = await log.append(event(1))

    assert await log.get(record.id) == record


async def _run_worker(url: str, jwk_file: Path, count: int, label: str, start_at: float) -> int:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.observability._append_worker", url, str(jwk_file),
        str(count), label, str(start_at), cwd=ROOT, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    return int(out.decode().split()[-1])


async def test_two_processes_append_to_one_chain(
    log: AuditLog, engine: AsyncEngine, database_url: str, signer: LocalSigner, tmp_path: Path
) -> None:
    jwk_file = tmp_path / "key.jwk"
    jwk_file.write_text(json.dumps(signer.private_jwk()))

    start_at = time.time() + 3.0  # both started and connected by then
    acknowledged = await asyncio.gather(
        _run_worker(database_url, jwk_file, 200, "instance-a", start_at),
        _run_worker(database_url, jwk_file, 200, "instance-b", start_at),
    )

    assert acknowledged == [200, 200]
    assert await record_count(engine) == 400
    result = await log.verify()
    assert result.ok, result.reason
    assert result.checked == 400
    assert result.checkpoints >= 1
    if not database_url.startswith("sqlite"):  # SQLite's lock is not fair: one may go first
        assert await _interleavings(engine) > 1


async def _interleavings(engine: AsyncEngine) -> int:
    """How many times the chain passes from one instance's records to the other's."""
    async with engine.connect() as conn:
        owners = [row.client_id for row in await conn.execute(
            select(records.c.client_id).order_by(records.c.seq))]
    return sum(1 for a, b in itertools.pairwise(owners) if a != b)




@pytest.fixture
async def impatient_engine(engine: AsyncEngine, database_url: str) -> AsyncIterator[AsyncEngine]:
    """The tables exist (via `engine`); this engine gives up on a locked SQLite within 0.2 s."""
    args = {"timeout": 0.2} if database_url.startswith("sqlite") else {}
    impatient = create_async_engine(database_url, connect_args=args)
    yield impatient
    await impatient.dispose()


async def _attempt(log: AuditLog, i: int) -> AuditRecord | AuditUnavailable:
    try:
        return await log.append(event(i))
    except AuditUnavailable as exc:
        return exc


async def test_store_outage_fails_every_append_and_loses_nothing_acknowledged(
    impatient_engine: AsyncEngine, signer: LocalSigner, database_url: str
) -> None:
    log = AuditLog(impatient_engine, signer, commit_timeout=2.0)
    await log.start()
    before = await asyncio.gather(*(log.append(event(i)) for i in range(20)))

    async with database_outage(database_url):
        during = await asyncio.gather(*(_attempt(log, 100 + i) for i in range(20)))

    after = await asyncio.gather(*(log.append(event(200 + i)) for i in range(20)))
    await log.close()

    assert all(isinstance(outcome, AuditUnavailable) for outcome in during)
    assert log.stats.failed_commits >= 1
    acknowledged = {r.id for r in [*before, *after]}
    assert await record_count(impatient_engine) == 40
    for record_id in acknowledged:
        assert await log.get(record_id) is not None
    result = await log.verify()
    assert result.ok, result.reason


async def test_sessions_cut_between_batches_fail_no_append(
    log: AuditLog, engine: AsyncEngine, database_url: str
) -> None:
    """The writer keeps its connection between batches; a database restart (or an idle
    timeout) cuts it. The next batch must find that out before writing, and go through."""
    if not database_url.startswith("postgresql"):
        pytest.skip("cutting a session from outside: PostgreSQL")
    before = await asyncio.gather(*(log.append(event(i)) for i in range(5)))

    assert await terminate_sessions(database_url) >= 1  # the writer's, at least
    after = await asyncio.gather(*(log.append(event(10 + i)) for i in range(5)))

    assert [r.seq for r in [*before, *after]] == list(range(1, 11))
    assert log.stats.failed_commits == 0
    assert await record_count(engine) == 10
    assert (await log.verify()).ok


async def test_append_after_close_is_refused(engine: AsyncEngine, signer: LocalSigner) -> None:
    log = AuditLog(engine, signer)
    await log.start()
    await log.close()

    with pytest.raises(AuditUnavailable):
        await log.append(event(1))


async def test_unreachable_store_is_unavailable(signer: LocalSigner, tmp_path: Path) -> None:
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'missing' / 'audit.db'}")
    log = AuditLog(engine, signer)

    with pytest.raises(AuditUnavailable):
        await log.start()
    await engine.dispose()


async def test_verify_while_appending_sees_a_valid_chain(log: AuditLog) -> None:
    appends = asyncio.gather(*(log.append(event(i)) for i in range(200)))
    verdicts = []
    while not appends.done():
        verdicts.append(await log.verify())
        await asyncio.sleep(0)
    await appends

    assert verdicts
    assert all(v.ok for v in verdicts), [v.reason for v in verdicts if not v.ok]


async def test_a_quiet_log_is_checkpointed_after_checkpoint_seconds(
    engine: AsyncEngine, signer: LocalSigner
) -> None:
    log = AuditLog(engine, signer, checkpoint_every=1000, checkpoint_seconds=0.2)
    await log.start()
    for i in range(3):
        await log.append(event(i))
    await asyncio.sleep(0.6)
    await log.close()

    result = await log.verify()
    assert result.ok, result.reason
    assert result.checkpoints >= 1
    assert (await log.checkpoint()) == 3
