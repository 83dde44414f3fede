"""The hub database: engine creation and Alembic migrations at start-up.

Several hub instances may start at once against one PostgreSQL: the upgrade runs under a
transaction-scoped advisory lock, so exactly one of them migrates and the others find it done.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, event, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

__all__ = ["MIGRATIONS", "create_engine", "migrate"]

MIGRATIONS = Path(__file__).parent / "migrations"
_MIGRATION_LOCK = 0x7065726D  # "perm"


def create_engine(url: str) -> AsyncEngine:
    if url.startswith("postgresql"):
        return create_async_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 5})  # = audit commit timeout
        event.listen(engine.sync_engine, "connect", _sqlite_wal)
        return engine
    return create_async_engine(url)


def _sqlite_wal(dbapi_connection: Any, _: Any) -> None:
    """WAL: readers (client lookups, auditors) never block the audit writer, nor it them.

    synchronous stays FULL, so a committed audit record survives a power cut.
    """
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.close()


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def _upgrade(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK})
    command.upgrade(alembic_config(connection), "head")


async def migrate(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(_upgrade)
