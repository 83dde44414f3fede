"""The person fields of a record (`actor`, `actor_kind`, `case_reference`) are hashed when a
record has them, and only then: records written before migration 0010_actor verify as they
did, in the database and as exported, and changing a person field breaks the chain."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable

import orjson
from alembic import command
from sqlalchemy import Connection, insert, select, update

from hub.database import alembic_config, create_engine
from observability.audit import AuditLog, LocalSigner, check_proof
from observability.audit._records import recomputed_hash, record_from_json
from observability.audit._tables import chain_head, records, subjects
from tests.observability.conftest import event

# Two records exported by the hub before 0010_actor (its code, byte for byte): a chain of two.
BEFORE_0010 = [
    b'{"agency":"Wuhan Social Insurance Agency","client_address":"10.0.0.7","client_id":"si-age'
    b'ncy-wuhan","denied":[],"document_hash":"sha256:abababababababababababababababababababababab'
    b'abababababababababab","embargoed_until":null,"error_codes":[],"fields":["Enrollment.ssn",'
    b'"Query.enrollment"],"hash":"67d04d5f35bf5ae36eaac19d038af6b0ea820998076093ae973d49ae4f7b2b'
    b'd6","id":"11111111111111111111111111111111","kind":"graphql","operation":"Enrollment","out'
    b'come":"OK","prev_hash":"0000000000000000000000000000000000000000000000000000000000000000",'
    b'"purpose":"benefit-check","response_sha256":"cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd'
    b'cdcdcdcdcdcdcdcdcdcd","seq":1,"subjects":["420100202400038251"],"time":"2026-11-30T08:00:0'
    b'0.000000Z","trace_id":"00000000000000000000000000000001"}',
    b'{"agency":"Wuhan Social Insurance Agency","client_address":"10.0.0.7","client_id":"si-age'
    b'ncy-wuhan","denied":[],"document_hash":"sha256:abababababababababababababababababababababab'
    b'abababababababababab","embargoed_until":null,"error_codes":[],"fields":["Enrollment.ssn",'
    b'"Query.enrollment"],"hash":"71c0d45ffc14501b77ae0b54ec0e46661e5865eaeb65d5c0a1627c5f50ec69'
    b'28","id":"22222222222222222222222222222222","kind":"graphql","operation":"Enrollment","out'
    b'come":"OK","prev_hash":"67d04d5f35bf5ae36eaac19d038af6b0ea820998076093ae973d49ae4f7b2bd6",'
    b'"purpose":"benefit-check","response_sha256":"cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd'
    b'cdcdcdcdcdcdcdcdcdcd","seq":2,"subjects":["420100202400038251"],"time":"2026-11-30T08:00:0'
    b'0.000000Z","trace_id":"00000000000000000000000000000001"}',
]


def _upgrade_to(revision: str) -> Callable[[Connection], None]:
    def run(connection: Connection) -> None:
        command.upgrade(alembic_config(connection), revision)

    return run


def test_an_exported_record_of_before_0010_still_hashes_as_it_did() -> None:
    for line in BEFORE_0010:
        record = record_from_json(orjson.loads(line))
        assert (record.actor, record.actor_kind, record.case_reference) == (None, None, None)
        assert recomputed_hash(record) == record.hash


async def test_a_chain_written_before_0010_verifies_after_it_and_grows_with_actors(
    database_url: str,
) -> None:
    engine = create_engine(database_url)
    old = [orjson.loads(line) for line in BEFORE_0010]
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_upgrade_to("0009_purposes"))
            for value in old:
                row = {k: v for k, v in value.items() if k not in ("fields", "subjects",
                                                                  "denied", "error_codes")}
                row["time"] = record_from_json(value).time
                await conn.execute(insert(records).values(
                    **row, **{k: orjson.dumps(value[k]).decode()
                              for k in ("fields", "subjects", "denied", "error_codes")},
                ))
                await conn.execute(insert(subjects).values(subject=value["subjects"][0],
                                                          seq=value["seq"]))
            await conn.execute(insert(chain_head).values(
                id=1, seq=2, hash=old[-1]["hash"], checkpoint_seq=0,
                checkpoint_at=record_from_json(old[0]).time,
            ))
        async with engine.begin() as conn:
            await conn.run_sync(_upgrade_to("head"))
        signer = LocalSigner()
        log = AuditLog(engine, signer, checkpoint_every=1000)
        await log.start()
        try:
            assert (await log.verify()).ok
            officer = await log.append(event(3, actor="PS-0001", actor_kind="OFFICER",
                                             case_reference="WH-2026-0001"))
            after = await log.verify()
            proof = await log.prove(officer.id)
            forged = {**proof, "record": {**proof["record"], "actor": "PS-0002"}}
            proved, forged_check = check_proof(proof, signer.jwks()), check_proof(
                forged, signer.jwks())
            exported = io.StringIO()
            await log.export("jsonl", exported)
            table = io.StringIO()
            await log.export("csv", table)
            async with engine.begin() as conn:  # an intruder renames the officer
                await conn.execute(update(records).where(records.c.seq == 3)
                                   .values(actor="PS-0002"))
            renamed = await log.verify()
            async with engine.begin() as conn:  # or drops the case
                await conn.execute(update(records).where(records.c.seq == 3)
                                   .values(actor="PS-0001", case_reference=None))
            dropped = await log.verify()
        finally:
            await log.close()
        async with engine.connect() as conn:
            stored = (await conn.execute(select(records.c.actor_kind))).scalars().all()
    finally:
        await engine.dispose()
    assert after.ok and after.checked == 3, after.reason
    # The record's proof carries the officer and the case, and holds only as they were written.
    assert proved.ok and proved.record is not None, proved.reason
    assert (proved.record.actor, proved.record.case_reference) == ("PS-0001", "WH-2026-0001")
    assert not forged_check.ok
    lines = exported.getvalue().splitlines()
    assert [line.encode() for line in lines[:2]] == BEFORE_0010  # exported as it was
    newest = orjson.loads(lines[2])
    assert (newest["actor"], newest["actor_kind"], newest["case_reference"]) == (
        "PS-0001", "OFFICER", "WH-2026-0001"
    )
    assert recomputed_hash(record_from_json(newest)) == newest["hash"]
    rows = list(csv.DictReader(io.StringIO(table.getvalue())))
    assert [(r["actor"], r["actor_kind"], r["case_reference"]) for r in rows] == [
        ("", "", ""), ("", "", ""), ("PS-0001", "OFFICER", "WH-2026-0001"),
    ]
    assert (renamed.ok, renamed.first_bad_seq) == (False, 3)
    assert (dropped.ok, dropped.first_bad_seq) == (False, 3)
    assert sorted(stored, key=str) == sorted([None, None, "OFFICER"], key=str)
