"""Exporting the log for auditors: JSON Lines (one canonical record a line) or CSV.

Both carry `prev_hash` and `hash`, and the JSON Lines export is the exact canonical form that was
hashed, so an exported file can be re-verified without the database. Records are streamed in seq
order, a chunk at a time, so exporting years of log needs little memory.
"""

from __future__ import annotations

import csv
from collections.abc import AsyncIterator
from typing import Literal, TextIO

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from observability.audit._records import AuditRecord, canonical, record_from_row, record_to_json
from observability.audit._tables import records

__all__ = ["ExportFormat", "export_records", "stream_records"]

ExportFormat = Literal["jsonl", "csv"]
_CHUNK = 1000
_LISTS = ("fields", "subjects", "denied", "error_codes")
_COLUMNS = (
    "seq", "id", "time", "kind", "outcome", "client_id", "agency", "purpose", "operation",
    "document_hash", *_LISTS, "trace_id", "client_address", "response_sha256",
    "embargoed_until", "actor", "actor_kind", "case_reference", "prev_hash", "hash",
)


async def stream_records(
    engine: AsyncEngine, from_seq: int | None = None, to_seq: int | None = None
) -> AsyncIterator[AuditRecord]:
    """Records in seq order, read a chunk at a time."""
    next_seq = from_seq or 1
    async with engine.connect() as conn:
        while True:
            query = select(records).where(records.c.seq >= next_seq)
            if to_seq is not None:
                query = query.where(records.c.seq <= to_seq)
            rows = (await conn.execute(query.order_by(records.c.seq).limit(_CHUNK))).mappings()
            chunk = [record_from_row(row) for row in rows]
            for record in chunk:
                yield record
            if len(chunk) < _CHUNK:
                return
            next_seq = chunk[-1].seq + 1


async def export_records(
    engine: AsyncEngine,
    fmt: ExportFormat,
    out: TextIO,
    from_seq: int | None = None,
    to_seq: int | None = None,
) -> int:
    """Write records to `out`; returns how many."""
    if fmt not in ("jsonl", "csv"):
        raise ValueError(f"unknown export format {fmt!r}")
    writer = csv.DictWriter(out, fieldnames=_COLUMNS, lineterminator="\n") if fmt == "csv" else None
    if writer is not None:
        writer.writeheader()
    count = 0
    async for record in stream_records(engine, from_seq, to_seq):
        value = record_to_json(record)
        if writer is None:
            out.write(canonical(value).decode() + "\n")
        else:
            writer.writerow(_csv_row(value))
        count += 1
    return count


def _csv_row(value: dict[str, object]) -> dict[str, object]:
    lists = {name: orjson.dumps(value[name]).decode() for name in _LISTS}
    return {**value, **lists}
