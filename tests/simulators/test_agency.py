"""Agency seeding on SQLite, and on PostgreSQL when HUB_TEST_DATABASE_URL is set."""

from __future__ import annotations

from pathlib import Path

import httpx
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import create_async_engine

from connectors.agency_tables import enrollments, persons, ssn_sequences
from simulators import Dataset, build_agency_app, seed_agency_databases
from simulators.agency import public_url
from tests.services import fresh_database
from tests.simulators.servers import serve

WUHAN = "420100"


async def _counts(url: str) -> tuple[int, int, int]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            people = (await conn.execute(select(func.count()).select_from(persons))).scalar_one()
            rows = (await conn.execute(select(func.count()).select_from(enrollments))).scalar_one()
            sequence = select(ssn_sequences.c.next_value).where(ssn_sequences.c.region == WUHAN)
            next_value = (await conn.execute(sequence)).scalar_one()
    finally:
        await engine.dispose()
    return people, rows, next_value


async def test_seeding_writes_the_region_enrollments(database_url: str, dataset: Dataset) -> None:
    await seed_agency_databases(dataset, {WUHAN: database_url})
    expected = dataset.enrollments_in(WUHAN)
    people, rows, next_value = await _counts(database_url)
    assert rows == len(expected)
    assert people == len({e.permit_number for e in expected})
    assert next_value > max(int(e.ssn[6:17]) for e in expected)


async def test_seeded_rows_match_the_dataset(database_url: str, dataset: Dataset) -> None:
    await seed_agency_databases(dataset, {WUHAN: database_url})
    ssn = next(e.ssn for e in dataset.enrollments_in(WUHAN))
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            row = (await conn.execute(select(enrollments).where(enrollments.c.ssn == ssn))).one()
    finally:
        await engine.dispose()
    enrollment = dataset.enrollments[ssn]
    assert (row.permit_number, row.status, row.enrolled_on, row.employer_credit_code) == (
        enrollment.permit_number, enrollment.status.value, enrollment.enrolled_on,
        enrollment.employer_credit_code,
    )


async def test_seeding_twice_is_safe(database_url: str, dataset: Dataset) -> None:
    await seed_agency_databases(dataset, {WUHAN: database_url})
    first = await _counts(database_url)
    await seed_agency_databases(dataset, {WUHAN: database_url})
    assert await _counts(database_url) == first


async def test_reseeding_never_lowers_the_ssn_sequence(database_url: str, dataset: Dataset) -> None:
    await seed_agency_databases(dataset, {WUHAN: database_url})
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as conn:
            bump = update(ssn_sequences).values(next_value=ssn_sequences.c.next_value + 7)
            await conn.execute(bump)
    finally:
        await engine.dispose()
    bumped = (await _counts(database_url))[2]
    await seed_agency_databases(dataset, {WUHAN: database_url})
    assert (await _counts(database_url))[2] == bumped


async def test_agency_app_reports_health_and_regions(tmp_path: Path, dataset: Dataset) -> None:
    async with (
        fresh_database(tmp_path, "wuhan") as wuhan,
        fresh_database(tmp_path, "yichang") as yichang,
    ):
        urls = {WUHAN: wuhan, "420500": yichang}
        await seed_agency_databases(dataset, urls)
        app = build_agency_app(urls)
        async with serve(app) as base, httpx.AsyncClient(base_url=base) as client:
            health = await client.get("/healthz")
            assert health.status_code == 200
            assert health.json() == {"status": "ok", "regions": {WUHAN: True, "420500": True}}
            assert (await client.get("/regions")).json() == {
                "regions": {region: public_url(url) for region, url in urls.items()}
            }


async def test_unreachable_database_makes_the_agency_unhealthy(tmp_path: Path) -> None:
    urls = {WUHAN: f"sqlite+aiosqlite:///{tmp_path / 'missing-dir' / 'agency.db'}"}
    async with serve(build_agency_app(urls)) as base, httpx.AsyncClient(base_url=base) as client:
        health = await client.get("/healthz")
    assert health.status_code == 503
    assert health.json()["regions"] == {WUHAN: False}


def test_public_url_hides_the_password() -> None:
    shown = public_url("postgresql+asyncpg://agency:s3cret@db.example:5432/wuhan")
    assert "s3cret" not in shown
    assert shown == "postgresql+asyncpg://agency@db.example:5432/wuhan"
