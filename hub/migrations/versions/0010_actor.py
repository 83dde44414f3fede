"""who stood behind a request

Three nullable columns on `audit_records`: `actor` (the person an exchanged token names: an
officer, a foreigner), `actor_kind` (SYSTEM, OFFICER, SUBJECT) and `case_reference` (the case an
officer named in `X-Case-Reference`), and an index to find one actor's records. Records written
before this revision keep null there and hash exactly as they did: the chain hashes these
fields only when a record has them.

Revision ID: 0010_actor
Revises: 0009_purposes
Create Date: 2026-12-05 23:15:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_actor"
down_revision: str | None = "0009_purposes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("audit_records") as batch:
        batch.add_column(sa.Column("actor", sa.String(length=128), nullable=True))
        batch.add_column(sa.Column("actor_kind", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("case_reference", sa.String(length=64), nullable=True))
    op.create_index("ix_audit_records_actor_seq", "audit_records", ["actor", "seq"])


def downgrade() -> None:
    op.drop_index("ix_audit_records_actor_seq", table_name="audit_records")
    with op.batch_alter_table("audit_records") as batch:
        batch.drop_column("case_reference")
        batch.drop_column("actor_kind")
        batch.drop_column("actor")
