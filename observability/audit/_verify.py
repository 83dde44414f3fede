"""Verifying the chain: every kind of tampering is reported at the first seq it breaks.

Edited record: its hash no longer matches its content (or, if the editor rehashed it, the next
record no longer links to it). Deleted record: a seq is missing. Inserted record: the seqs after it
were renumbered, so their hashes (which cover `seq`) break. Swapped records: the same. Deleted
tail: the head row, or a signed checkpoint, names a seq that no longer exists. Rewriting the tail
and the head row together is caught by the checkpoints, whose signatures the verifier checks with
a JWKS it trusts (not one read from the database).

Records keep being appended while we read, so the tail is judged against the head row read
*after* the records: records and head are committed together, so every seq up to that head must
already be readable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import func, select
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from observability.audit._records import (
    GENESIS_HASH,
    AuditRecord,
    recomputed_hash,
    record_from_row,
)
from observability.audit._signing import CHECKPOINT_TYP, check_signature
from observability.audit._tables import HEAD_ID, chain_head, checkpoints, records, subjects

__all__ = ["VerifyResult", "check_checkpoint", "verify_chain"]

_CHUNK = 1000
_NO_LIMIT = 2**62


@dataclass(frozen=True)
class VerifyResult:
    """The outcome of `AuditLog.verify`: `first_bad_seq` and `reason` are set when not ok."""

    ok: bool
    checked: int
    checkpoints: int
    first_bad_seq: int | None = None
    reason: str | None = None


def check_checkpoint(token: str, seq: int, head_hash: str, jwks: dict[str, Any]) -> str | None:
    """Why the checkpoint JWS does not vouch for `(seq, head_hash)`, or None if it does."""
    signed = check_signature(token, CHECKPOINT_TYP, jwks)
    if signed.payload is None:
        return f"checkpoint at seq {seq}: {signed.reason}"
    try:
        claims = orjson.loads(signed.payload)
    except orjson.JSONDecodeError:
        return f"checkpoint at seq {seq}: payload is not JSON"
    if not isinstance(claims, dict) or claims.get("seq") != seq or claims.get("hash") != head_hash:
        return f"checkpoint at seq {seq}: signed head differs from the record's hash"
    return None


class _Verifier:
    """Walks records in seq order, stopping at the first one that breaks the chain."""

    def __init__(self, jwks: dict[str, Any], first_seq: int, prev_hash: str) -> None:
        self.jwks = jwks
        self.expected = first_seq
        self.prev_hash = prev_hash
        self.checked = 0
        self.checkpoints = 0
        self.bad: tuple[int, str] | None = None

    def fail(self, seq: int, reason: str) -> bool:
        self.bad = (seq, reason)
        return False

    def step(self, row: RowMapping, index: set[str], token: str | None) -> bool:
        """Check one record row (with its subject index and checkpoint); False at the first bad."""
        seq = row["seq"]
        if seq != self.expected:
            return self.fail(self.expected, "record missing (the chain skips this seq)")
        try:
            record = record_from_row(row)
        except (ValueError, TypeError, KeyError) as exc:
            return self.fail(seq, f"record unreadable: {exc}")
        reason = self._reason(record, index, token)
        if reason is not None:
            return self.fail(seq, reason)
        self.expected, self.prev_hash = seq + 1, record.hash
        self.checked += 1
        return True

    def _reason(self, record: AuditRecord, index: set[str], token: str | None) -> str | None:
        if record.prev_hash != self.prev_hash:
            return f"prev_hash does not link to record {record.seq - 1}"
        if recomputed_hash(record) != record.hash:
            return "contents do not match the record's hash"
        if index != set(record.subjects):
            return "subject index disagrees with the record"
        if token is None:
            return None
        self.checkpoints += 1
        return check_checkpoint(token, record.seq, record.hash, self.jwks)

    def result(self) -> VerifyResult:
        if self.bad is None:
            return VerifyResult(True, self.checked, self.checkpoints)
        seq, reason = self.bad
        return VerifyResult(False, self.checked, self.checkpoints, seq, reason)


async def verify_chain(
    engine: AsyncEngine, jwks: dict[str, Any], from_seq: int | None, to_seq: int | None
) -> VerifyResult:
    """Verify records `from_seq..to_seq` (default: all), then the tail if it is in range."""
    first = max(from_seq or 1, 1)
    last = to_seq if to_seq is not None else _NO_LIMIT
    async with engine.connect() as conn:
        verifier = _Verifier(jwks, first, await _anchor(conn, first))
        if not await _walk(conn, verifier, last):
            return verifier.result()
        head_seq, head_hash = await _head(conn)
        if not await _walk(conn, verifier, min(last, head_seq)):  # appended meanwhile
            return verifier.result()
        await _check_tail(conn, verifier, last, head_seq, head_hash)
    return verifier.result()


async def _anchor(conn: AsyncConnection, first: int) -> str:
    """The hash a range starts from: the stored hash of the record before it."""
    if first == 1:
        return GENESIS_HASH
    query = select(records.c.hash).where(records.c.seq == first - 1)
    found = (await conn.execute(query)).scalar_one_or_none()
    if found is None:
        query = select(records.c.prev_hash).where(records.c.seq == first)
        found = (await conn.execute(query)).scalar_one_or_none()
    return found or GENESIS_HASH


async def _walk(conn: AsyncConnection, verifier: _Verifier, last: int) -> bool:
    while verifier.expected <= last:
        query = (
            select(records).where(records.c.seq >= verifier.expected, records.c.seq <= last)
            .order_by(records.c.seq).limit(_CHUNK)
        )
        rows = (await conn.execute(query)).mappings().all()
        if not rows:
            return True
        index, tokens = await _chunk_extras(conn, rows[0]["seq"], rows[-1]["seq"])
        for row in rows:
            if not verifier.step(row, index.get(row["seq"], set()), tokens.get(row["seq"])):
                return False
    return True


async def _chunk_extras(
    conn: AsyncConnection, low: int, high: int
) -> tuple[dict[int, set[str]], dict[int, str]]:
    index: dict[int, set[str]] = {}
    query = select(subjects).where(subjects.c.seq >= low, subjects.c.seq <= high)
    for row in (await conn.execute(query)).mappings():
        index.setdefault(row["seq"], set()).add(row["subject"])
    query = select(checkpoints.c.seq, checkpoints.c.jws).where(
        checkpoints.c.seq >= low, checkpoints.c.seq <= high
    )
    tokens = {row.seq: row.jws for row in await conn.execute(query)}
    return index, tokens


async def _head(conn: AsyncConnection) -> tuple[int, str]:
    row = (await conn.execute(select(chain_head).where(chain_head.c.id == HEAD_ID))).first()
    return (row.seq, row.hash) if row is not None else (0, GENESIS_HASH)


async def _check_tail(
    conn: AsyncConnection, verifier: _Verifier, last: int, head_seq: int, head_hash: str
) -> None:
    """After the walk: nothing missing before the head, nothing beyond it, no orphan checkpoint."""
    end = verifier.expected - 1
    if end < min(last, head_seq):
        verifier.fail(end + 1, f"records missing at the tail (the chain head is at seq {head_seq})")
    elif last >= head_seq and end > head_seq:
        verifier.fail(head_seq + 1, f"record beyond the chain head (seq {head_seq})")
    elif last >= head_seq and end == head_seq and head_seq > 0 and verifier.prev_hash != head_hash:
        verifier.fail(end, "the chain head's hash differs from the last record's")
    else:
        beyond = await _checkpoints_beyond(conn, end, last)
        if beyond:
            verifier.fail(end + 1, f"a checkpoint covers seq {max(beyond)}, past the last record")


async def _checkpoints_beyond(conn: AsyncConnection, end: int, last: int) -> Sequence[int]:
    """Checkpoints past the last record read whose record still does not exist."""
    query = select(checkpoints.c.seq).where(checkpoints.c.seq > end, checkpoints.c.seq <= last)
    claimed = [row.seq for row in await conn.execute(query)]
    if not claimed:
        return []
    exists = select(func.max(records.c.seq))
    top = (await conn.execute(exists)).scalar_one_or_none() or 0
    return [seq for seq in claimed if seq > top]
