"""client jurisdiction

Each client gains `jurisdiction`: the GB/T 2260 region prefixes whose rows it serves, stored
like `purposes` (space-separated, sorted), or `*` for national. Clients registered before this
revision were answered for every region, so they get `*` and keep working exactly as before;
an operator narrows them with `hub clients set-jurisdiction`. New clients name theirs at
`hub clients add --jurisdiction`.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The server default fills the rows that exist now; it is dropped afterwards so that the
    # registry, not the database, decides every new client's jurisdiction.
    with op.batch_alter_table("auth_clients") as batch:
        batch.add_column(sa.Column("jurisdiction", sa.Text(), nullable=False, server_default="*"))
    with op.batch_alter_table("auth_clients") as batch:
        batch.alter_column("jurisdiction", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("auth_clients") as batch:
        batch.drop_column("jurisdiction")
