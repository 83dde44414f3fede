"""Appending to the one chain: the transaction every hub instance runs, and its checkpoints.

One transaction appends a whole batch: it locks the single `audit_chain_head` row (`SELECT ...
FOR UPDATE` on PostgreSQL; `BEGIN IMMEDIATE` on SQLite, which takes the database's write lock
before reading, so two processes never read the same head), numbers and hashes the records from
that head, inserts them and their subject index rows, moves the head, and commits. Either all of
the batch is stored or none of it.

A checkpoint is *claimed* inside that transaction (the head row remembers the last claimed
checkpoint, so of all instances exactly one claims each), then signed and inserted after the
commit, so that signing never holds the chain lock and a signer failure never fails a request.
A crash between the two loses one checkpoint; the next one covers its records.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from observability.audit._errors import AuditUnavailable
from observability.audit._records import (
    GENESIS_HASH,
    AuditEvent,
    AuditRecord,
    aware,
    canonical,
    chained,
    format_time,
    new_record_id,
    record_to_row,
)
from observability.audit._signing import CHECKPOINT_TYP, Signer
from observability.audit._tables import HEAD_ID, chain_head, checkpoints, records, subjects

__all__ = [
    "LOCK_HEAD",
    "Batch",
    "ChainHead",
    "CheckpointPolicy",
    "append_batch",
    "append_in",
    "claim_checkpoint",
    "ensure_head",
    "extended",
    "head_of",
    "moved_head",
    "translated",
    "write_checkpoint",
]


@dataclass(frozen=True)
class ChainHead:
    seq: int
    hash: str
    checkpoint_seq: int
    checkpoint_at: datetime


@dataclass(frozen=True)
class Batch:
    """What one committed transaction stored, and the checkpoint it claimed, if any."""

    records: tuple[AuditRecord, ...]
    checkpoint_due: bool


@dataclass(frozen=True)
class CheckpointPolicy:
    every: int
    seconds: float

    def due(self, head: ChainHead, new_seq: int, now: datetime) -> bool:
        if new_seq <= head.checkpoint_seq:
            return False
        old = (now - head.checkpoint_at).total_seconds() >= self.seconds
        return new_seq - head.checkpoint_seq >= self.every or old


@asynccontextmanager
async def translated(what: str) -> AsyncIterator[None]:
    """Any storage failure (driver, pool, network, timeout) becomes `AuditUnavailable`."""
    try:
        yield
    except (SQLAlchemyError, OSError, TimeoutError) as exc:
        raise AuditUnavailable(f"audit store unavailable ({what}): {type(exc).__name__}") from exc


@asynccontextmanager
async def chain_locked(engine: AsyncEngine) -> AsyncIterator[tuple[AsyncConnection, ChainHead]]:
    """A transaction holding the chain's write lock, with the head as it is now."""
    async with engine.connect() as conn, conn.begin():
        yield conn, await _locked_head(conn)


async def _locked_head(conn: AsyncConnection) -> ChainHead:
    """Take the chain's write lock in `conn`'s open transaction; the head as it is now."""
    if conn.dialect.name == "sqlite":
        # pysqlite would begin a deferred transaction, whose read lock could deadlock
        # against another process's writer; IMMEDIATE waits for the write lock instead.
        await conn.exec_driver_sql("BEGIN IMMEDIATE")
    return head_of((await conn.execute(LOCK_HEAD)).mappings().one())


# The chain's write lock: the one head row, read FOR UPDATE.
LOCK_HEAD = select(chain_head).where(chain_head.c.id == HEAD_ID).with_for_update()


def head_of(row: Mapping[Any, Any]) -> ChainHead:
    """The head as the `LOCK_HEAD` row gives it."""
    return ChainHead(row["seq"], row["hash"], row["checkpoint_seq"], aware(row["checkpoint_at"]))


async def ensure_head(engine: AsyncEngine) -> None:
    """Create the head row of an empty chain; instances starting together race harmlessly."""
    try:
        async with engine.begin() as conn:
            if (await conn.execute(select(chain_head.c.id))).first() is None:
                await conn.execute(
                    insert(chain_head).values(
                        id=HEAD_ID,
                        seq=0,
                        hash=GENESIS_HASH,
                        checkpoint_seq=0,
                        checkpoint_at=datetime.now(UTC),
                    )
                )
    except IntegrityError:
        pass


async def _write(
    conn: AsyncConnection, batch: Sequence[AuditRecord], moved: dict[str, object]
) -> None:
    await conn.execute(insert(records), [record_to_row(r) for r in batch])
    index = [{"subject": s, "seq": r.seq} for r in batch for s in r.subjects]
    if index:
        await conn.execute(insert(subjects), index)
    await conn.execute(update(chain_head).where(chain_head.c.id == HEAD_ID).values(moved))


def extended(head: ChainHead, events: Sequence[AuditEvent], policy: CheckpointPolicy) -> Batch:
    """`events` numbered and hashed onto `head`, and whether they bring a checkpoint due."""
    batch = _numbered(events, head)
    return Batch(tuple(batch), policy.due(head, batch[-1].seq, datetime.now(UTC)))


def moved_head(head: ChainHead, batch: Batch) -> dict[str, Any]:
    """The head row's new values once `batch` is stored (a checkpoint claimed if it is due)."""
    last = batch.records[-1]
    return {
        "seq": last.seq,
        "hash": last.hash,
        "checkpoint_seq": last.seq if batch.checkpoint_due else head.checkpoint_seq,
        "checkpoint_at": datetime.now(UTC) if batch.checkpoint_due else head.checkpoint_at,
    }


async def append_in(
    conn: AsyncConnection, events: Sequence[AuditEvent], policy: CheckpointPolicy
) -> Batch:
    """In `conn`, with no transaction open: lock, number, hash, write and commit one batch."""
    async with conn.begin():
        head = await _locked_head(conn)
        batch = extended(head, events, policy)
        await _write(conn, batch.records, moved_head(head, batch))
    return batch


async def append_batch(
    engine: AsyncEngine, events: Sequence[AuditEvent], policy: CheckpointPolicy
) -> Batch:
    """Store `events` as the next records of the chain, all in one committed transaction."""
    async with engine.connect() as conn:
        return await append_in(conn, events, policy)


def _numbered(events: Sequence[AuditEvent], head: ChainHead) -> list[AuditRecord]:
    batch: list[AuditRecord] = []
    prev_seq, prev_hash = head.seq, head.hash
    for event in events:
        record = chained(event, prev_seq + 1, new_record_id(), prev_hash)
        batch.append(record)
        prev_seq, prev_hash = record.seq, record.hash
    return batch


async def claim_checkpoint(
    engine: AsyncEngine, policy: CheckpointPolicy | None
) -> ChainHead | None:
    """Claim a checkpoint of the current head if `policy` says one is due (always if None).

    Returns the claimed head, or None when there is nothing to claim.
    """
    async with chain_locked(engine) as (conn, head):
        now = datetime.now(UTC)
        if head.seq == 0 or (policy is not None and not policy.due(head, head.seq, now)):
            return None
        await conn.execute(
            update(chain_head)
            .where(chain_head.c.id == HEAD_ID)
            .values(checkpoint_seq=head.seq, checkpoint_at=now)
        )
        return ChainHead(head.seq, head.hash, head.seq, now)


async def write_checkpoint(engine: AsyncEngine, signer: Signer, seq: int, head_hash: str) -> bool:
    """Sign `(seq, hash, time)` and store it; False if that checkpoint already exists."""
    now = datetime.now(UTC)
    payload = canonical({"seq": seq, "hash": head_hash, "time": format_time(now)})
    token = await signer.sign_jws(payload, CHECKPOINT_TYP)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                insert(checkpoints).values(seq=seq, hash=head_hash, jws=token, time=now)
            )
    except IntegrityError:
        return False
    return True


async def head_writable(engine: AsyncEngine, within_seconds: float) -> bool:
    """Can a writer take the chain lock now? A no-op update, rolled back, within the limit."""
    try:
        async with asyncio.timeout(within_seconds), engine.connect() as conn:
            await conn.execute(
                update(chain_head).where(chain_head.c.id == HEAD_ID).values(seq=chain_head.c.seq)
            )
            await conn.rollback()
    except (SQLAlchemyError, OSError, TimeoutError):
        return False
    return True
