"""Alembic environment: the hub database holds the auth and audit tables.

Run through `hub.database.migrate`, which hands over an open connection; there is no
alembic.ini, so `alembic` on the command line is not needed to deploy.
"""

from __future__ import annotations

from alembic import context

from auth.models import auth_metadata
from hub.tables import hub_metadata
from observability.audit import audit_metadata

target_metadata = [auth_metadata, audit_metadata, hub_metadata]

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
