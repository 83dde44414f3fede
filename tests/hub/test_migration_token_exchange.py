"""Migration 0006_token_exchange: the identity-provider registry appears, and goes on downgrade."""

from __future__ import annotations

from collections.abc import Callable

from alembic import command
from sqlalchemy import Connection, inspect

from hub.database import alembic_config, create_engine


def _to(revision: str, *, down: bool = False) -> Callable[[Connection], None]:
    def run(connection: Connection) -> None:
        (command.downgrade if down else command.upgrade)(alembic_config(connection), revision)

    return run


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


async def test_the_identity_provider_table_comes_with_0006_and_leaves_with_it(
    database_url: str,
) -> None:
    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_to("0005"))
            before = await conn.run_sync(_tables)
            await conn.run_sync(_to("0006_token_exchange"))
            after = await conn.run_sync(_tables)
            await conn.run_sync(_to("0005", down=True))
            downgraded = await conn.run_sync(_tables)
        assert "auth_identity_providers" not in before
        assert after - before == {"auth_identity_providers"}
        assert downgraded == before
    finally:
        await engine.dispose()
