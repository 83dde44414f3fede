"""Tables the hub itself owns (auth and audit have their own), on one `MetaData` for Alembic."""

from __future__ import annotations

from sqlalchemy import (
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

__all__ = [
    "enrollment_claims", "hub_metadata", "live_cards", "trusted_documents", "webhook_deliveries",
]

hub_metadata = MetaData()

webhook_deliveries = Table(
    "hub_webhook_deliveries",
    hub_metadata,
    Column("id", String(36), primary_key=True),
    Column("event_id", String(128), nullable=False, index=True),
    Column("client_id", String(128), nullable=False, index=True),
    Column("url", String(2048), nullable=False),
    Column("payload", Text, nullable=False),  # the change, as JSON; signed at each send
    Column("state", String(16), nullable=False, index=True),  # PENDING | DELIVERED | FAILED
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False, index=True),
    Column("last_status", String(64), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("delivered_at", DateTime(timezone=True), nullable=True),
)

trusted_documents = Table(
    "hub_trusted_documents",
    hub_metadata,
    Column("client_id", String(128), primary_key=True),
    Column("document_id", String(64), primary_key=True),  # sha256 of the text, hex
    Column("document", Text, nullable=False),
    Column("name", String(256), nullable=True),  # the file it came from, for people
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# One row per person with a live enrollment, or one being made (`hub.enrollment_claims`). The
# primary key on the person is the rule "one person, one live enrollment, nationally": every
# hub instance inserts here before an agency writes, and the database lets exactly one in.
enrollment_claims = Table(
    "hub_enrollment_claims",
    hub_metadata,
    Column("person_id", String(32), primary_key=True),  # the WMS holder id
    Column("claim_id", String(36), nullable=False, unique=True),
    Column("region", String(6), nullable=False),
    Column("idempotency_key", String(128), nullable=False),
    Column("request_hash", String(64), nullable=False),
    Column("ssn", String(18), nullable=True),  # NULL: the agency write is under way (or was cut)
    Column("claimed_at", DateTime(timezone=True), nullable=False),
)

# One row per person and card kind while the person has (or is being given) a live card of it:
# the primary key is the rule "at most one live card of each kind per person", kept by the
# database for every hub instance. `card_number` is NULL while an application holds the row
# and the card system has not answered it yet (`hub.live_cards`).
live_cards = Table(
    "hub_live_cards",
    hub_metadata,
    Column("person_key", String(64), nullable=False),  # the holder's WMS id
    Column("kind", String(16), nullable=False),  # PHYSICAL | ELECTRONIC
    Column("ssn", String(18), nullable=False),
    Column("region", String(6), nullable=False),
    Column("card_number", String(16), nullable=True),
    Column("idempotency_key", String(160), nullable=False),
    Column("request_hash", String(64), nullable=False),
    Column("reserved_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("person_key", "kind", name="pk_hub_live_cards"),
    Index("ix_hub_live_cards_card_number", "card_number"),
)
