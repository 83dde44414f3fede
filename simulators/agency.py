"""Simulated regional social-security agencies: one SQL database per region, seeded from a Dataset.

The agencies' data lives in real databases (SQLite files or PostgreSQL) with the tables of
`connectors.agency_tables`; the agency connector queries those databases directly. The HTTP
app only reports health and which database serves which region, never a password.

Seeding is idempotent and keeps what others wrote: rows already present (same primary key)
are left alone, and the SSN sequence only ever moves up. Reseeding from a different seed
into the same database is not supported: recreate the database instead.

    GET /healthz   {"status": "ok" | "degraded", "regions": {code: reachable}}  (503 if degraded)
    GET /regions   {"regions": {code: database URL without its password}}
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import case, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route

from connectors.agency_tables import enrollments, metadata, persons, ssn_sequences
from connectors.records import Enrollment
from simulators._http import JSONBody, simulator_app
from simulators.synthetic import Dataset

__all__ = [
    "agency_rows", "build_agency_app", "enrolled_among", "public_url", "seed_agency_databases",
]

_HEALTH_TIMEOUT_SECONDS = 2.0
_Row = dict[str, Any]


def public_url(url: str) -> str:
    """`url` with its password removed, safe to show."""
    parsed = make_url(url)
    without = URL.create(
        parsed.drivername, parsed.username, None, parsed.host, parsed.port, parsed.database,
        parsed.query,
    )
    return without.render_as_string(hide_password=False)


def _enrollment_row(enrollment: Enrollment, person_id: str) -> _Row:
    return {
        "ssn": enrollment.ssn,
        "permit_number": enrollment.permit_number,
        "person_id": person_id,
        "region": enrollment.region,
        "status": enrollment.status.value,
        "enrolled_on": enrollment.enrolled_on,
        "name": enrollment.name,
        "nationality": enrollment.nationality,
        "employer_credit_code": enrollment.employer_credit_code,
        "created_at": dt.datetime.combine(enrollment.enrolled_on, dt.time(9), dt.UTC),
    }


def agency_rows(dataset: Dataset, region: str) -> tuple[list[_Row], list[_Row], int]:
    """(persons, enrollments, next SSN sequence value) of one region's agency database."""
    people: dict[str, _Row] = {}
    rows: list[_Row] = []
    for enrollment in dataset.enrollments_in(region):
        holder = dataset.permits[enrollment.permit_number].holder
        people[holder.id] = {
            "id": holder.id,
            "passport_number": holder.passport_number,
            "name": holder.name,
            "nationality": holder.nationality,
            "date_of_birth": holder.date_of_birth,
            "gender": holder.gender,
        }
        rows.append(_enrollment_row(enrollment, holder.id))
    next_value = max((int(row["ssn"][6:17]) for row in rows), default=0) + 1
    return list(people.values()), rows, next_value


async def _insert_missing(conn: AsyncConnection, table: Any, rows: list[_Row]) -> None:
    if not rows:
        return
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    await conn.execute(dialect.insert(table).on_conflict_do_nothing(), rows)


async def _raise_sequence(conn: AsyncConnection, region: str, next_value: int) -> None:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(ssn_sequences).values(region=region, next_value=next_value)
    higher = case(
        (ssn_sequences.c.next_value < statement.excluded.next_value, statement.excluded.next_value),
        else_=ssn_sequences.c.next_value,
    )
    await conn.execute(
        statement.on_conflict_do_update(index_elements=["region"], set_={"next_value": higher})
    )


async def _seed_region(engine: AsyncEngine, dataset: Dataset, region: str) -> None:
    people, rows, next_value = agency_rows(dataset, region)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
        await _insert_missing(conn, persons, people)
        await _insert_missing(conn, enrollments, rows)
        await _raise_sequence(conn, region, next_value)


async def seed_agency_databases(dataset: Dataset, urls: Mapping[str, str]) -> None:
    """Create the agency tables in each region's database and insert that region's data."""
    for region, url in urls.items():
        engine = create_async_engine(url)
        try:
            await _seed_region(engine, dataset, region)
        finally:
            await engine.dispose()


async def enrolled_among(urls: Mapping[str, str], numbers: Sequence[str]) -> set[str]:
    """Which of these permit numbers have an enrollment in any region's database now (the
    demo's samples must name an unenrolled permit after a newcomer enrolled the last one)."""
    found: set[str] = set()
    for url in urls.values():
        engine = create_async_engine(url)
        try:
            async with engine.connect() as conn:
                rows = await conn.execute(
                    select(enrollments.c.permit_number).where(
                        enrollments.c.permit_number.in_(list(numbers))
                    )
                )
                found.update(row[0] for row in rows)
        finally:
            await engine.dispose()
    return found


async def _reachable(engine: AsyncEngine) -> bool:
    try:
        async with asyncio.timeout(_HEALTH_TIMEOUT_SECONDS), engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except (SQLAlchemyError, OSError, TimeoutError):
        return False
    return True


def build_agency_app(urls: Mapping[str, str]) -> Starlette:
    """Health and discovery for the agency databases at `urls` (region code → SQLAlchemy URL)."""
    engines = {region: create_async_engine(url) for region, url in urls.items()}
    shown = {region: public_url(url) for region, url in urls.items()}

    async def health(request: Request) -> JSONBody:
        checks = await asyncio.gather(*(_reachable(e) for e in engines.values()))
        regions = dict(zip(engines, checks, strict=True))
        healthy = all(checks)
        body = {"status": "ok" if healthy else "degraded", "regions": regions}
        return JSONBody(body, status_code=200 if healthy else 503)

    async def regions(request: Request) -> JSONBody:
        return JSONBody({"regions": shown})

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        for engine in engines.values():
            await engine.dispose()

    routes = [
        Route("/healthz", health, methods=["GET"]),
        Route("/regions", regions, methods=["GET"]),
    ]
    return simulator_app(routes, lifespan=lifespan)
