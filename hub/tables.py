"""Tables the hub itself owns (auth and audit have their own), on one `MetaData` for Alembic."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, Text

__all__ = ["hub_metadata", "trusted_documents", "webhook_deliveries"]

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
