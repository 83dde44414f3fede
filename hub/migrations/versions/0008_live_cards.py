"""live cards: at most one live card of each kind per person

The hub's register of live cards (`hub.live_cards`): one row per (person, kind), so the
database refuses a second live card of a kind for one person, whichever SSN it is applied
under and whichever hub instance takes the application. It starts empty: cards the source
systems already hold are found by each application's look at the holder's cards, and
duplicates among them are reported by `hub check duplicates`.

Revision ID: 0008_live_cards
Revises: 0007_one_person
Create Date: 2026-12-05 22:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_live_cards"
down_revision: str | None = "0007_one_person"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "hub_live_cards",
        sa.Column("person_key", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("ssn", sa.String(length=18), nullable=False),
        sa.Column("region", sa.String(length=6), nullable=False),
        sa.Column("card_number", sa.String(length=16), nullable=True),
        sa.Column("idempotency_key", sa.String(length=160), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("reserved_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("person_key", "kind", name="pk_hub_live_cards"),
    )
    op.create_index("ix_hub_live_cards_card_number", "hub_live_cards", ["card_number"])


def downgrade() -> None:
    op.drop_index("ix_hub_live_cards_card_number", table_name="hub_live_cards")
    op.drop_table("hub_live_cards")
