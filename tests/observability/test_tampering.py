"""Every way of tampering with the stored log is caught by `verify`, at the first seq it breaks.

The tamperer works through its own connection pool with plain SQLAlchemy, as someone with write
access to the database would; the log under test learns nothing of it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace

import pytest
from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from observability.audit import AuditLog, LocalSigner
from observability.audit._records import (
    chained,
    recomputed_hash,
    record_from_row,
    record_to_row,
)
from observability.audit._tables import chain_head, checkpoints, records, subjects
from tests.observability.conftest import event

COUNT = 30  # checkpoints (every 10) at seq 10, 20 and 30


@pytest.fixture
async def written(log: AuditLog) -> AuditLog:
    """A log of COUNT records, each committed alone, checkpoints written."""
    for i in range(COUNT):
        await log.append(event(i))
    await log.close()  # waits for the background checkpoints
    return log


async def _subjects_of(conn: AsyncConnection, seq: int) -> list[str]:
    query = select(subjects.c.subject).where(subjects.c.seq == seq)
    return [row.subject for row in await conn.execute(query)]


async def _move(conn: AsyncConnection, old: int, new: int) -> None:
    """Renumber one record, carrying its subject index rows along (the foreign key needs it)."""
    index = await _subjects_of(conn, old)
    await conn.execute(delete(subjects).where(subjects.c.seq == old))
    await conn.execute(update(records).where(records.c.seq == old).values(seq=new))
    if index:
        await conn.execute(insert(subjects), [{"subject": s, "seq": new} for s in index])


async def _delete(conn: AsyncConnection, low: int, high: int) -> None:
    await conn.execute(delete(subjects).where(subjects.c.seq.between(low, high)))
    await conn.execute(delete(records).where(records.c.seq.between(low, high)))


async def change_one_row(conn: AsyncConnection) -> None:
    await conn.execute(update(records).where(records.c.seq == 13).values(purpose="curiosity"))


async def change_and_rehash_one_row(conn: AsyncConnection) -> None:
    row = (await conn.execute(select(records).where(records.c.seq == 13))).mappings().one()
    forged = replace(record_from_row(row), purpose="curiosity")
    await conn.execute(update(records).where(records.c.seq == 13).values(
        purpose="curiosity", hash=recomputed_hash(forged)))


async def delete_one_row(conn: AsyncConnection) -> None:
    await _delete(conn, 13, 13)


async def insert_one_row(conn: AsyncConnection) -> None:
    """Make room after 13 and insert a record hashed correctly onto 13."""
    for seq in range(COUNT, 13, -1):
        await _move(conn, seq, seq + 1)
    row = (await conn.execute(select(records).where(records.c.seq == 13))).mappings().one()
    forged = chained(event(99, subjects=()), 14, "f" * 32, row["hash"])
    await conn.execute(insert(records).values(record_to_row(forged)))


async def swap_two_rows(conn: AsyncConnection) -> None:
    await _move(conn, 13, -1)
    await _move(conn, 14, 13)
    await _move(conn, -1, 14)


async def delete_last_ten(conn: AsyncConnection) -> None:
    await _delete(conn, COUNT - 9, COUNT)


async def delete_last_ten_and_rewind_head(conn: AsyncConnection) -> None:
    await _delete(conn, COUNT - 9, COUNT)
    row = (await conn.execute(select(records).where(records.c.seq == COUNT - 10))).mappings().one()
    await conn.execute(update(chain_head).values(seq=COUNT - 10, hash=row["hash"]))


async def append_past_the_head(conn: AsyncConnection) -> None:
    row = (await conn.execute(select(records).where(records.c.seq == COUNT))).mappings().one()
    forged = chained(event(99, subjects=()), COUNT + 1, "f" * 32, record_from_row(row).hash)
    await conn.execute(insert(records).values(record_to_row(forged)))


async def drop_a_subject_from_the_index(conn: AsyncConnection) -> None:
    await conn.execute(delete(subjects).where(subjects.c.seq == 13))


async def forge_a_checkpoint(conn: AsyncConnection) -> None:
    row = (await conn.execute(select(checkpoints).where(checkpoints.c.seq == 10))).mappings().one()
    token = await LocalSigner().sign_jws(b'{"hash":"%s","seq":10}' % row["hash"].encode(),
                                         "audit-checkpoint+jws")
    await conn.execute(update(checkpoints).where(checkpoints.c.seq == 10).values(jws=token))


Tamper = Callable[[AsyncConnection], Awaitable[None]]


@pytest.mark.parametrize(
    ("tamper", "first_bad_seq"),
    [
        (change_one_row, 13),
        (change_and_rehash_one_row, 14),
        (delete_one_row, 13),
        (insert_one_row, 15),
        (swap_two_rows, 13),
        (delete_last_ten, COUNT - 9),
        (delete_last_ten_and_rewind_head, COUNT - 9),
        (append_past_the_head, COUNT + 1),
        (drop_a_subject_from_the_index, 13),
        (forge_a_checkpoint, 10),
    ],
)
async def test_verify_reports_the_first_tampered_seq(
    written: AuditLog, intruder: AsyncEngine, tamper: Tamper, first_bad_seq: int
) -> None:
    async with intruder.begin() as conn:
        await tamper(conn)

    result = await written.verify()

    assert not result.ok
    assert result.first_bad_seq == first_bad_seq, result.reason


async def test_an_untouched_log_verifies_with_its_checkpoints(written: AuditLog) -> None:
    result = await written.verify()

    assert result.ok, result.reason
    assert (result.checked, result.checkpoints) == (COUNT, 3)


async def test_a_range_verifies_from_the_record_before_it(written: AuditLog) -> None:
    result = await written.verify(from_seq=11, to_seq=20)

    assert result.ok, result.reason
    assert result.checked == 10


async def test_a_range_before_the_tampering_still_verifies(
    written: AuditLog, intruder: AsyncEngine
) -> None:
    async with intruder.begin() as conn:
        await change_one_row(conn)

    assert (await written.verify(to_seq=12)).ok
    assert (await written.verify(from_seq=10, to_seq=20)).first_bad_seq == 13


async def test_checkpoints_are_checked_against_the_given_jwks(written: AuditLog) -> None:
    result = await written.verify(jwks=LocalSigner().jwks())

    assert not result.ok
    assert result.first_bad_seq == 10
    assert "signature" in (result.reason or "")
