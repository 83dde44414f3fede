"""Session-wide fixtures for real servers and services (DESIGN: tests use no mocks of our own code)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from connectors.kv import KeyValue
from tests.services import fresh_database, fresh_key_value


@pytest.fixture
async def database_url(tmp_path: Path) -> AsyncIterator[str]:
    """An empty hub database for one test: SQLite, or PostgreSQL when HUB_TEST_DATABASE_URL is set."""
    async with fresh_database(tmp_path) as url:
        yield url


@pytest.fixture
async def kv() -> AsyncIterator[KeyValue]:
    """An empty key-value store for one test: in-process, or Redis when HUB_TEST_REDIS_URL is set."""
    async with fresh_key_value() as store:
        yield store
