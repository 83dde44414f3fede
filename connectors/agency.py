"""Social-security agency connector: one SQL database per region, SSNs routed by region prefix.

One async engine per region; each batch is one SELECT per region. SQLAlchemy errors never
leave this module: they become UpstreamUnavailable / UpstreamTimeout.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from connectors.agency_tables import enrollments
from connectors.errors import RegionNotServed, UpstreamTimeout, UpstreamUnavailable
from connectors.identifiers import region_of_ssn
from connectors.records import Enrollment, EnrollmentStatus

__all__ = ["SqlEnrollmentSource", "create_agency_engines"]


def _upstream(region: str) -> str:
    return f"agency-{region}"


@contextmanager
def _map_sql_errors(region: str) -> Iterator[None]:
    try:
        yield
    except TimeoutError:
        raise UpstreamTimeout(_upstream(region), "no answer within the timeout") from None
    except DBAPIError as exc:
        if exc.connection_invalidated:
            raise UpstreamUnavailable(_upstream(region), "connection lost") from None
        raise UpstreamUnavailable(_upstream(region), "query failed") from None
    except (SQLAlchemyError, OSError):
        raise UpstreamUnavailable(_upstream(region), "database unreachable") from None


def create_agency_engines(
    urls: Mapping[str, str], timeout_seconds: float
) -> dict[str, AsyncEngine]:
    engines: dict[str, AsyncEngine] = {}
    for region, url in urls.items():
        if url.startswith("postgresql"):
            engines[region] = create_async_engine(
                url,
                pool_size=10,
                max_overflow=10,
                pool_pre_ping=True,
                connect_args={"timeout": timeout_seconds, "command_timeout": timeout_seconds},
            )
        else:
            engines[region] = create_async_engine(url, connect_args={"timeout": timeout_seconds})
    return engines


def _record(row: Any) -> Enrollment:
    return Enrollment(
        ssn=row.ssn,
        permit_number=row.permit_number,
        region=row.region,
        status=EnrollmentStatus(row.status),
        enrolled_on=row.enrolled_on,
        name=row.name,
        nationality=row.nationality,
        employer_credit_code=row.employer_credit_code,
    )


class SqlEnrollmentSource:
    def __init__(self, engines: Mapping[str, AsyncEngine], timeout_seconds: float) -> None:
        self._engines = dict(engines)
        self._timeout = timeout_seconds

    @property
    def engines(self) -> Mapping[str, AsyncEngine]:
        return self._engines

    def regions(self) -> frozenset[str]:
        return frozenset(self._engines)

    def _engine(self, region: str) -> AsyncEngine:
        engine = self._engines.get(region)
        if engine is None:
            raise RegionNotServed(_upstream(region), "no agency database for this region")
        return engine

    async def _select(self, region: str, column: Any, keys: Sequence[str]) -> list[Enrollment]:
        engine = self._engine(region)
        query = select(enrollments).where(column.in_(list(keys)))
        with _map_sql_errors(region):
            async with asyncio.timeout(self._timeout), engine.connect() as conn:
                rows = (await conn.execute(query)).all()
        return [_record(row) for row in rows]

    async def by_permits(self, region: str, numbers: Sequence[str]) -> Mapping[str, Enrollment]:
        """Active enrollment (else the newest) of each permit at the region's agency."""
        found: dict[str, Enrollment] = {}
        for record in await self._select(region, enrollments.c.permit_number, numbers):
            current = found.get(record.permit_number)
            if current is None or _rank(record) > _rank(current):
                found[record.permit_number] = record
        return found

    async def by_ssns(self, ssns: Sequence[str]) -> Mapping[str, Enrollment]:
        by_region: dict[str, list[str]] = {}
        for ssn in ssns:
            by_region.setdefault(region_of_ssn(ssn), []).append(ssn)
        served = [r for r in by_region if r in self._engines]
        batches = await asyncio.gather(
            *(self._select(r, enrollments.c.ssn, by_region[r]) for r in served)
        )
        return {e.ssn: e for batch in batches for e in batch}

    async def ping(self) -> dict[str, bool]:
        async def one(region: str, engine: AsyncEngine) -> tuple[str, bool]:
            try:
                async with asyncio.timeout(self._timeout), engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))
            except (SQLAlchemyError, OSError, TimeoutError):
                return region, False
            return region, True

        return dict(await asyncio.gather(*(one(r, e) for r, e in self._engines.items())))

    async def close(self) -> None:
        for engine in self._engines.values():
            await engine.dispose()


def _rank(record: Enrollment) -> tuple[bool, object]:
    return (record.status is EnrollmentStatus.ACTIVE, record.enrolled_on)
