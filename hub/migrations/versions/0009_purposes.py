"""purposes bound to operations

The purpose registry, `auth_purposes`: each purpose of use with the GraphQL root fields it
covers and a `needs_officer` flag (false). Nothing is seeded: which operations an agency's
purpose covers is the operator's decision, not a default. A purpose that clients registered
before this revision name, but that is not registered, covers nothing: requests made for it are
refused (`PURPOSE_NOT_ALLOWED`) until an operator registers it with
`hub purposes add NAME --operations "..."`. The clients themselves are untouched, and this
revision logs a warning naming those purposes; `hub purposes list` shows them too.

Revision ID: 0009_purposes
Revises: 0008_live_cards
Create Date: 2026-12-05 22:00:00
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_purposes"
down_revision: str | None = "0008_live_cards"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("hub.migrations")


def upgrade() -> None:
    op.create_table(
        "auth_purposes",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("operations", sa.Text(), nullable=False),
        sa.Column("needs_officer", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    rows = op.get_bind().execute(sa.text("SELECT purposes FROM auth_clients"))
    named = sorted({name for (purposes,) in rows for name in purposes.split()})
    if named:
        log.warning(
            "purposes now cover only the operations registered for them; these purposes of "
            "registered clients cover none until registered (hub purposes add NAME "
            "--operations ...), and requests made for them are refused: %s",
            " ".join(named),
        )


def downgrade() -> None:
    op.drop_table("auth_purposes")
