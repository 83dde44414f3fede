"""`AuditLog`: the service the hub holds, one per process, over the shared hub database.

`append` returns only once the record's transaction has committed; `append_with_evidence`, for
a response that leaves with a body, only once its batch's evidence is signed too (one signature
per batch, in the writer, after the commit). The hub releases a response after that, never
before (no audit, no data). Every storage or signing failure surfaces as `AuditUnavailable`,
which the hub maps to `INTERNAL` (HTTP 503) and releases nothing; a record whose evidence could
not be signed stays committed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, TextIO

from sqlalchemy import select
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncEngine

from observability.audit._chain import (
    Batch,
    CheckpointPolicy,
    append_batch,
    claim_checkpoint,
    ensure_head,
    head_writable,
    translated,
    write_checkpoint,
)
from observability.audit._errors import AuditQueryError, AuditRejected, AuditUnavailable
from observability.audit._evidence import (
    batch_statement,
    build_proof,
    evidence_claims,
    evidence_value,
    require_logged_body,
)
from observability.audit._export import ExportFormat, export_records, stream_records
from observability.audit._group_commit import GroupCommitter
from observability.audit._merkle import merkle_tree
from observability.audit._records import (
    AuditEvent,
    AuditRecord,
    aware,
    content_digest,
    format_time,
    record_from_row,
)
from observability.audit._rejections import rejection_of
from observability.audit._search import AuditFilter, AuditPage, search_records
from observability.audit._signing import EVIDENCE_TYP, Signer
from observability.audit._tables import audit_metadata, checkpoints, records
from observability.audit._verify import VerifyResult, verify_chain
from observability.audit._writer import ChainWriter

__all__ = ["AuditLog", "AuditStats", "Evidenced"]

_log = logging.getLogger("observability.audit")


@dataclass(frozen=True)
class AuditStats:
    """Counters since start, for metrics: `commits` < `records` is group commit at work."""

    records: int
    commits: int
    failed_commits: int
    checkpoints: int


@dataclass(frozen=True)
class Evidenced:
    """A committed record, and the `X-Hub-Evidence` value for the response body it logs."""

    record: AuditRecord
    evidence: str


@dataclass(frozen=True)
class _Append:
    event: AuditEvent
    evidence: bool  # its response leaves with a body: a leaf of the batch's evidence tree


@dataclass(frozen=True)
class _Appended:
    record: AuditRecord
    evidence: str | None


class AuditLog:
    """Appends to, verifies, searches and proves the hash-chained audit log."""

    def __init__(
        self,
        engine: AsyncEngine,
        signer: Signer,
        *,
        checkpoint_every: int = 1000,
        checkpoint_seconds: float = 60,
        max_batch: int = 256,
        group_commit: bool = True,
        commit_timeout: float = 10.0,
    ) -> None:
        self._engine = engine
        self._signer = signer
        self._policy = CheckpointPolicy(checkpoint_every, checkpoint_seconds)
        self._commit_timeout = commit_timeout
        # The group committer is the one writer of this process: it keeps its connection.
        self._writer = ChainWriter(engine) if group_commit else None
        self._group: GroupCommitter[_Append, _Appended] | None = (
            GroupCommitter(
                self._commit,
                max_batch=max_batch,
                idle_seconds=checkpoint_seconds,
                on_idle=self._idle_checkpoint,
            )
            if group_commit
            else None
        )
        self._records = self._commits = self._failed = self._checkpoints = 0
        self._background: set[asyncio.Task[None]] = set()
        # Called after each commit with (records in it, seconds it took): metrics hook.
        self.on_commit: Callable[[int, float], None] | None = None

    async def start(self, *, create_tables: bool = False) -> None:
        """Create the head row (and the tables, for tests and the embedded demo)."""
        async with translated("start"):
            if create_tables:
                async with self._engine.begin() as conn:
                    await conn.run_sync(audit_metadata.create_all)
            await ensure_head(self._engine)
        if self._group is not None:
            self._group.start()

    async def close(self) -> None:
        """Commit what is queued, finish pending checkpoints; the engine stays the caller's."""
        if self._group is not None:
            await self._group.close()
        if self._writer is not None:
            await self._writer.close()
        if self._background:
            await asyncio.gather(*self._background)

    async def writable(self, within_seconds: float = 1.0) -> bool:
        """For readiness: the store answers and the chain lock can be taken."""
        return await head_writable(self._engine, within_seconds)

    @property
    def stats(self) -> AuditStats:
        return AuditStats(self._records, self._commits, self._failed, self._checkpoints)

    async def append(self, event: AuditEvent) -> AuditRecord:
        """Store `event`; returns once committed, else raises `AuditUnavailable`."""
        return (await self._submit(_Append(event, evidence=False))).record

    async def append_with_evidence(self, event: AuditEvent, body: bytes) -> Evidenced:
        """Store the event of a response about to leave with `body`, and make its evidence.

        Returns once the record is committed and its batch signed, else raises
        `AuditUnavailable`. `body` must be the one the event logs (`response_sha256`), else
        ValueError before anything is stored: evidence never vouches for another body.
        """
        require_logged_body(event.response_sha256, body)
        appended = await self._submit(_Append(event, evidence=True))
        if appended.evidence is None:  # the writer fails such a waiter instead; never release
            raise AuditUnavailable("the record was committed without its evidence")
        return Evidenced(appended.record, appended.evidence)

    async def _submit(self, item: _Append) -> _Appended:
        if self._group is not None:
            return await self._group.submit(item)
        (outcome,) = await self._commit([item])  # without group commit: a batch of one
        if isinstance(outcome, AuditUnavailable):
            raise outcome
        return outcome

    async def _commit(self, items: Sequence[_Append]) -> list[_Appended | AuditUnavailable]:
        """The writer's step: one transaction, then one signature for the evidence it needs.

        A batch the store refused for a record's content wrote nothing: it is committed in
        halves, recursively, so the record(s) at fault fail alone and every other commits, in
        order, onto the one chain (a batch of n with one bad record: about 2 log2(n) tries).
        """
        try:
            records = await self._store([item.event for item in items])
        except AuditRejected as rejected:
            if len(items) == 1:
                _log.error("audit: the store refused a record; its request fails: %s", rejected)
                return [rejected]
            half = len(items) // 2
            return [*await self._commit(items[:half]), *await self._commit(items[half:])]
        return await self._sealed(records, [item.evidence for item in items])

    async def _store(self, events: Sequence[AuditEvent]) -> Sequence[AuditRecord]:
        started = time.perf_counter()
        try:
            async with translated("append"), asyncio.timeout(self._commit_timeout):
                if self._writer is not None:
                    batch = await self._writer.append(events, self._policy)
                else:
                    batch = await _rejecting(append_batch(self._engine, events, self._policy))
        except Exception:
            self._failed += 1
            raise
        self._commits += 1
        self._records += len(batch.records)
        if self.on_commit is not None:
            self.on_commit(len(batch.records), time.perf_counter() - started)
        if batch.checkpoint_due:
            last = batch.records[-1]
            self._spawn_checkpoint(last.seq, last.hash)
        return batch.records

    async def _sealed(
        self, records: Sequence[AuditRecord], wanted: Sequence[bool]
    ) -> list[_Appended | AuditUnavailable]:
        """Each record, with its evidence if it asked for some. The records are committed: if
        signing fails, they stay, and only the waiters that needed evidence hear of it."""
        asked = [record for record, wants in zip(records, wanted, strict=True) if wants]
        if not asked:
            return [_Appended(record, None) for record in records]
        try:
            made = iter(await self._evidence_for(asked))
        except Exception as exc:  # it must not stop the writer, nor fail the other waiters
            _log.exception(
                "audit: evidence for %d committed record(s) from seq %d not signed;"
                " their responses are withheld", len(asked), asked[0].seq,
            )
            return [
                _unsigned(exc) if wants else _Appended(record, None)
                for record, wants in zip(records, wanted, strict=True)
            ]
        return [
            _Appended(record, next(made) if wants else None)
            for record, wants in zip(records, wanted, strict=True)
        ]

    async def _evidence_for(self, records: Sequence[AuditRecord]) -> list[str]:
        """One signature over a Merkle root of the records' claims; each gets its path."""
        leaves = [evidence_claims(record) for record in records]
        tree = merkle_tree(leaves)
        statement = batch_statement(tree.root, len(leaves), datetime.now(UTC))
        async with asyncio.timeout(self._commit_timeout):  # a stuck key store must not stall
            token = await self._signer.sign_jws(statement, EVIDENCE_TYP)
        return [
            evidence_value(token, leaf, index, path)
            for index, (leaf, path) in enumerate(zip(leaves, tree.paths, strict=True))
        ]

    def _spawn_checkpoint(self, seq: int, head_hash: str) -> None:
        """Sign outside the writer's path; a failure costs one checkpoint, never a request."""
        task = asyncio.create_task(self._checkpoint_or_log(seq, head_hash))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _checkpoint_or_log(self, seq: int, head_hash: str) -> None:
        try:
            await self._checkpoint(seq, head_hash)
        except Exception:
            _log.exception("audit: checkpoint at seq %d failed", seq)

    async def _checkpoint(self, seq: int, head_hash: str) -> None:
        async with translated("checkpoint"):
            if await write_checkpoint(self._engine, self._signer, seq, head_hash):
                self._checkpoints += 1

    async def _idle_checkpoint(self) -> None:
        async with translated("checkpoint"):
            head = await claim_checkpoint(self._engine, self._policy)
        if head is not None:
            await self._checkpoint(head.seq, head.hash)

    async def checkpoint(self) -> int:
        """Sign the current head now (if it has not been); returns the seq it covers."""
        async with translated("checkpoint"):
            head = await claim_checkpoint(self._engine, None)
        if head is None:
            return 0
        await self._checkpoint(head.seq, head.hash)
        return head.seq

    async def verify(
        self,
        from_seq: int | None = None,
        to_seq: int | None = None,
        *,
        jwks: dict[str, Any] | None = None,
    ) -> VerifyResult:
        """Check the chain (and checkpoints, against `jwks` or the signer's) from..to."""
        async with translated("verify"):
            return await verify_chain(
                self._engine, jwks or dict(self._signer.jwks()), from_seq, to_seq
            )

    async def search(
        self,
        where: AuditFilter,
        first: int = 50,
        after: str | None = None,
        *,
        subject_view: bool,
        today: date,
    ) -> AuditPage:
        """Newest first; `subject_view` hides records under an embargo still running on `today`."""
        async with translated("search"):
            return await search_records(
                self._engine, where, first, after, subject_view=subject_view, today=today
            )

    async def export(
        self,
        fmt: ExportFormat,
        out: TextIO,
        from_seq: int | None = None,
        to_seq: int | None = None,
    ) -> int:
        """Write the records (seq order) as JSON Lines or CSV; returns how many."""
        async with translated("export"):
            return await export_records(self._engine, fmt, out, from_seq, to_seq)

    async def get(self, record_id: str) -> AuditRecord | None:
        async with translated("read"), self._engine.connect() as conn:
            query = select(records).where(records.c.id == record_id)
            row = (await conn.execute(query)).mappings().first()
        return record_from_row(row) if row is not None else None

    async def prove(self, record_id: str) -> dict[str, Any]:
        """A self-contained proof that the record is in the signed chain (see `check_proof`)."""
        record = await self.get(record_id)
        if record is None:
            raise AuditQueryError(f"no audit record {record_id!r}")
        checkpoint = await self._covering_checkpoint(record.seq)
        if checkpoint is None:
            await self.checkpoint()
            checkpoint = await self._covering_checkpoint(record.seq)
        if checkpoint is None:
            raise AuditQueryError(f"no checkpoint covers record {record_id!r}")
        async with translated("prove"):
            following = [
                content_digest(later.content())
                async for later in stream_records(self._engine, record.seq + 1, checkpoint["seq"])
            ]
        return build_proof(record, following, checkpoint)

    async def latest_checkpoint(self) -> dict[str, Any] | None:
        """The newest signed checkpoint (`seq`, `hash`, `time`, `jws`), None before the first."""
        query = select(checkpoints).order_by(checkpoints.c.seq.desc()).limit(1)
        async with translated("read"), self._engine.connect() as conn:
            row = (await conn.execute(query)).mappings().first()
        return _checkpoint_of(row) if row is not None else None

    async def _covering_checkpoint(self, seq: int) -> dict[str, Any] | None:
        query = (
            select(checkpoints).where(checkpoints.c.seq >= seq).order_by(checkpoints.c.seq).limit(1)
        )
        async with translated("read"), self._engine.connect() as conn:
            row = (await conn.execute(query)).mappings().first()
        return _checkpoint_of(row) if row is not None else None


def _checkpoint_of(row: RowMapping) -> dict[str, Any]:
    return {
        "seq": row["seq"],
        "hash": row["hash"],
        "time": format_time(aware(row["time"])),
        "jws": row["jws"],
    }


async def _rejecting(appending: Awaitable[Batch]) -> Batch:
    """`appending`'s batch; a failure that is the records' fault raised as `AuditRejected`."""
    try:
        return await appending
    except Exception as exc:
        rejected = rejection_of(exc)
        if rejected is None:
            raise
        raise rejected from exc


def _unsigned(cause: Exception) -> AuditUnavailable:
    """One per waiter, like the group committer's (a shared one would pile up tracebacks)."""
    error = AuditUnavailable(f"audit evidence could not be signed: {type(cause).__name__}")
    error.__cause__ = cause
    return error
