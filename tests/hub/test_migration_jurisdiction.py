"""Migration 0005: clients registered before jurisdictions existed keep serving every region."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from alembic import command
from sqlalchemy import Connection, insert, select

from auth.models import clients
from hub.database import alembic_config, create_engine


def _upgrade_to(revision: str) -> Callable[[Connection], None]:
    def run(connection: Connection) -> None:
        command.upgrade(alembic_config(connection), revision)

    return run


async def test_a_client_registered_before_0005_is_national_afterwards(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_upgrade_to("0004"))
            now = dt.datetime.now(dt.UTC)
            # Only the columns 0004 has: the row an operator's registry holds before upgrading.
            await conn.execute(insert(clients).values(
                client_id="old-agency", agency="Old", scopes="permit:validity",
                purposes="benefits", enabled=True, created_at=now, updated_at=now,
            ))
        async with engine.begin() as conn:
            await conn.run_sync(_upgrade_to("head"))
            jurisdiction = (await conn.execute(select(clients.c.jurisdiction))).scalar_one()
        assert jurisdiction == "*"
    finally:
        await engine.dispose()
