"""Migration 0009_purposes: purposes of clients registered before it cover nothing until registered.

Nothing is seeded: which operations a purpose covers is the operator's decision. The clients
stay as they were, `hub purposes list` names their purposes as not registered, and registering
one (`hub purposes add`) is all it takes for their requests to run again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from alembic import command
from sqlalchemy import Connection, func, insert, select

from auth._passwords import SecretHasher
from auth.clients import ClientRegistry
from auth.models import clients, purposes
from auth.purposes import PurposeRegistry
from hub.database import alembic_config, create_engine


def _upgrade_to(revision: str) -> Callable[[Connection], None]:
    def run(connection: Connection) -> None:
        command.upgrade(alembic_config(connection), revision)

    return run


async def test_a_purpose_named_before_0006_covers_nothing_until_it_is_registered(
    database_url: str,
) -> None:
    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_upgrade_to("0005"))
            now = dt.datetime.now(dt.UTC)
            await conn.execute(insert(clients).values(
                client_id="old-agency", agency="Old", scopes="permit:validity",
                purposes="benefits investigation", enabled=True, created_at=now, updated_at=now,
                jurisdiction="*",
            ))
        async with engine.begin() as conn:
            await conn.run_sync(_upgrade_to("head"))
            seeded = (await conn.execute(select(func.count()).select_from(purposes))).scalar_one()
        registry = ClientRegistry(engine, SecretHasher(1, 1024, 1))
        before = await registry.get("old-agency")
        await PurposeRegistry(engine, frozenset({"permit"})).add("benefits", ["permit"])
        after = await registry.get("old-agency")
    finally:
        await engine.dispose()
    assert seeded == 0
    assert before.purposes == {"benefits", "investigation"}  # the client is as it was
    assert before.purpose_operations == {}  # and its purposes cover nothing yet
    assert after.purpose_operations == {"benefits": frozenset({"permit"})}
