"""Fixtures for the audit log suites: the audit tables on the per-test database, a local signer,
a running `AuditLog`, and a second, plain engine to tamper with the tables as an intruder would."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from observability.audit import AuditEvent, AuditLog, LocalSigner, audit_metadata
from observability.audit._tables import records

T0 = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
PERMITS = ["420100202500000014", "420100202500000022", "420500202500000035"]


def event(i: int = 0, **overrides: Any) -> AuditEvent:
    """A plausible GraphQL access, the i-th of a series (one second apart)."""
    values: dict[str, Any] = {
        "time": T0 + timedelta(seconds=i),
        "kind": "graphql",
        "outcome": "OK",
        "client_id": "si-agency-wuhan",
        "agency": "si-agency",
        "purpose": "enrollment",
        "operation": "PermitForEnrollment",
        "document_hash": "sha256:" + f"{i:064x}",
        "fields": ("Query.permit", "WorkPermit.number", "WorkPermit.status"),
        "subjects": (PERMITS[i % len(PERMITS)],),
        "trace_id": f"{i:032x}",
        "client_address": "10.0.0.7",
        "response_sha256": f"{i:064x}",
    }
    values.update(overrides)
    return AuditEvent(**values)


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(database_url)
    async with engine.begin() as conn:
        await conn.run_sync(audit_metadata.create_all)
    yield engine
    await engine.dispose()


@pytest.fixture
async def intruder(database_url: str) -> AsyncIterator[AsyncEngine]:
    """A separate connection pool with full write access to the tables: the tamperer."""
    engine = create_async_engine(database_url)
    yield engine
    await engine.dispose()


async def record_count(engine: AsyncEngine) -> int:
    """How many audit records the database holds."""
    async with engine.connect() as conn:
        return (await conn.execute(select(func.count()).select_from(records))).scalar_one()


@pytest.fixture
def signer() -> LocalSigner:
    return LocalSigner()


@pytest.fixture
async def log(engine: AsyncEngine, signer: LocalSigner) -> AsyncIterator[AuditLog]:
    audit = AuditLog(engine, signer, checkpoint_every=10, checkpoint_seconds=3600)
    await audit.start()
    yield audit
    await audit.close()


def today() -> date:
    return date(2025, 3, 1)
