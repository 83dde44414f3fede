"""Exports carry the chain, so an exported file can be checked without the database."""

from __future__ import annotations

import csv
import io

import orjson

from observability.audit import AuditLog
from observability.audit._records import GENESIS_HASH, recomputed_hash, record_from_json
from tests.observability.conftest import event


async def test_jsonl_export_is_the_hashed_canonical_form(log: AuditLog) -> None:
    for i in range(12):
        await log.append(event(i))
    out = io.StringIO()

    count = await log.export("jsonl", out)

    lines = out.getvalue().splitlines()
    assert count == len(lines) == 12
    prev = GENESIS_HASH
    for line in lines:
        record = record_from_json(orjson.loads(line))
        assert record.prev_hash == prev
        assert recomputed_hash(record) == record.hash
        prev = record.hash


async def test_csv_export_has_one_row_per_record(log: AuditLog) -> None:
    for i in range(5):
        await log.append(event(i, denied=("WorkPermit.holder",)))
    out = io.StringIO()

    await log.export("csv", out)

    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert [int(row["seq"]) for row in rows] == [1, 2, 3, 4, 5]
    assert orjson.loads(rows[0]["denied"]) == ["WorkPermit.holder"]
    assert rows[0]["hash"] and rows[1]["prev_hash"] == rows[0]["hash"]


async def test_export_of_a_range(log: AuditLog) -> None:
    for i in range(5):
        await log.append(event(i))
    out = io.StringIO()

    assert await log.export("jsonl", out, from_seq=2, to_seq=3) == 2
