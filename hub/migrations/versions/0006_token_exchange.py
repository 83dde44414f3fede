"""identity providers for token exchange

`auth_identity_providers`: for each client, the issuers whose assertions about its officers or
the persons it serves it may exchange for a hub token (`hub clients add-idp`). Nothing exists
before this revision, so there is nothing to carry over.

Revision ID: 0006_token_exchange
Revises: 0005
Create Date: 2026-12-05 22:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_token_exchange"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "auth_identity_providers",
        sa.Column("client_id", sa.String(length=128), nullable=False),
        sa.Column("issuer", sa.String(length=512), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("jwks_url", sa.String(length=2048), nullable=True),
        sa.Column("jwks", sa.Text(), nullable=True),
        sa.Column("roles", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("client_id", "issuer"),
    )


def downgrade() -> None:
    op.drop_table("auth_identity_providers")
