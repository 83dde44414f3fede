"""enrollment claims: one person, one live enrollment, nationally

`hub_enrollment_claims` holds one row per person (the WMS holder id) with a live enrollment or
one being made; its primary key is what lets exactly one of several racing registrations of a
person through any hub instance go on to an agency. Empty at first: enrollments made before
this revision are found at the agencies when they matter (`schema.workflows.one_person`), and
`hub check duplicates` reports any person who already has more than one.

Revision ID: 0007_one_person
Revises: 0006_token_exchange
Create Date: 2026-12-05 22:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_one_person"
down_revision: str | None = "0006_token_exchange"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "hub_enrollment_claims",
        sa.Column("person_id", sa.String(length=32), nullable=False),
        sa.Column("claim_id", sa.String(length=36), nullable=False),
        sa.Column("region", sa.String(length=6), nullable=False),
        sa.Column("idempotency_key", sa.String(length=128), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("ssn", sa.String(length=18), nullable=True),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("person_id"),
        sa.UniqueConstraint("claim_id"),
    )


def downgrade() -> None:
    op.drop_table("hub_enrollment_claims")
