"""Tables of the audit log, on their own `MetaData` (the hub's Alembic migration imports it).

Portable between SQLite and PostgreSQL: no dialect types, list-valued fields as JSON text,
times as aware UTC. `audit_records.seq` is the position in the one hash chain, assigned under
the lock on the single `audit_chain_head` row, so it has no gaps. `audit_subjects` is an index
of `audit_records.subjects` for the data tracker; `verify` checks that it agrees with the
(hashed) record, so it cannot be edited to hide an access.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

__all__ = ["audit_metadata", "chain_head", "checkpoints", "records", "subjects"]

HEAD_ID = 1

audit_metadata = MetaData()

records = Table(
    "audit_records",
    audit_metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("id", String(32), nullable=False, unique=True),
    Column("time", DateTime(timezone=True), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("client_id", String(128), nullable=True),
    Column("agency", String(128), nullable=True),
    Column("purpose", String(128), nullable=True),
    Column("operation", String(256), nullable=True),
    Column("document_hash", String(128), nullable=True),
    Column("fields", Text, nullable=False),  # JSON list of Type.field paths
    Column("subjects", Text, nullable=False),  # JSON list of identifiers
    Column("denied", Text, nullable=False),  # JSON list of denied field paths
    Column("outcome", String(8), nullable=False),
    Column("error_codes", Text, nullable=False),  # JSON list
    Column("trace_id", String(64), nullable=True),
    Column("client_address", String(64), nullable=True),
    Column("response_sha256", String(64), nullable=True),
    Column("embargoed_until", Date, nullable=True),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    # Who stood behind the request (migration 0010_actor); null on records before it.
    Column("actor", String(128), nullable=True),
    Column("actor_kind", String(16), nullable=True),
    Column("case_reference", String(64), nullable=True),
    Index("ix_audit_records_time", "time"),
    Index("ix_audit_records_actor_seq", "actor", "seq"),
    Index("ix_audit_records_client_seq", "client_id", "seq"),
    Index("ix_audit_records_trace_id", "trace_id"),
)

subjects = Table(
    "audit_subjects",
    audit_metadata,
    Column("subject", String(64), primary_key=True),
    Column("seq", BigInteger, ForeignKey("audit_records.seq"), primary_key=True),
)

checkpoints = Table(
    "audit_checkpoints",
    audit_metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("hash", String(64), nullable=False),
    Column("jws", Text, nullable=False),
    Column("time", DateTime(timezone=True), nullable=False),
)

chain_head = Table(
    "audit_chain_head",
    audit_metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
    Column("checkpoint_seq", BigInteger, nullable=False),
    Column("checkpoint_at", DateTime(timezone=True), nullable=False),
)
