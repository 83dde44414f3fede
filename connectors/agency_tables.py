"""Tables of a regional social-security agency database (one database per region).

The agency connector queries these tables and the agency simulator creates and seeds them.
Only portable column types are used, so the same metadata works on SQLite and PostgreSQL.
This module declares schema only: it never opens a connection and never holds data.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Date, DateTime, Index, MetaData, String, Table

__all__ = ["enrollment_requests", "enrollments", "metadata", "persons", "ssn_sequences"]

metadata = MetaData()

persons = Table(
    "persons",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("passport_number", String(32), nullable=False),
    Column("name", String(200), nullable=False),
    Column("nationality", String(3), nullable=False),
    Column("date_of_birth", Date, nullable=False),
    Column("gender", String(1), nullable=False),
    Index("ix_persons_passport_number", "passport_number"),
)

# person_id is deliberately not a foreign key: writers insert the enrollment they verified even
# when the agency has no person record yet, as the real agencies' intake does.
enrollments = Table(
    "enrollments",
    metadata,
    Column("ssn", String(18), primary_key=True),
    Column("permit_number", String(18), nullable=False),
    Column("person_id", String(32), nullable=False),
    Column("region", String(6), nullable=False),
    Column("status", String(16), nullable=False),
    Column("enrolled_on", Date, nullable=False),
    Column("name", String(200), nullable=False),
    Column("nationality", String(3), nullable=False),
    Column("employer_credit_code", String(18), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_enrollments_permit_number", "permit_number"),
    Index("ix_enrollments_person_id", "person_id"),
)

# The next 11-digit SSN sequence number to allocate in the region.
ssn_sequences = Table(
    "ssn_sequences",
    metadata,
    Column("region", String(6), primary_key=True),
    Column("next_value", BigInteger, nullable=False),
)

# One row per idempotency key of a registration, written in the enrollment's own transaction:
# a retry with the same key finds the SSN it was given, and the primary key makes a second,
# concurrent writer of the same key fail instead of allocating a second SSN.
enrollment_requests = Table(
    "enrollment_requests",
    metadata,
    Column("idempotency_key", String(128), primary_key=True),
    Column("request_hash", String(64), nullable=False),
    Column("ssn", String(18), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
