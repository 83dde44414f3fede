"""Social-security agency connector: one SQL database per region, SSNs routed by region prefix.

One async engine per region; each batch is one SELECT per region. SQLAlchemy errors never
leave this module: they become UpstreamUnavailable / UpstreamTimeout.

`enroll` is the one write: a single transaction whose first statement bumps the region's row
of `ssn_sequences`. That row lock (PostgreSQL) or the database write lock (SQLite) serialises
every enrollment of the region, so the idempotency-key and active-enrollment checks that follow
cannot race, and a refused write rolls the allocation back with everything else. Within a
region the agency itself refuses a second active enrollment of a person (`PersonEnrolled`);
across regions only the hub can, with its claims (`schema.workflows.one_person`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry.trace import Tracer
from sqlalchemy import ARRAY, ColumnElement, any_, bindparam, insert, select, text, update
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from connectors.agency_tables import enrollment_requests, enrollments, persons, ssn_sequences
from connectors.errors import (
    PersonEnrolled,
    RegionNotServed,
    UpstreamTimeout,
    UpstreamUnavailable,
    WriteConflict,
)
from connectors.identifiers import make_ssn, region_of_ssn
from connectors.records import Enrollment, EnrollmentStatus, NewEnrollment
from connectors.resilience import Guard, Policy

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


WRITE_TIMEOUT_FACTOR = 5  # writes queue behind the region's sequence lock; reads never do


def create_agency_engines(
    urls: Mapping[str, str], timeout_seconds: float
) -> dict[str, AsyncEngine]:
    """Driver timeouts allow a queued write; each read still has its own shorter deadline."""
    timeout_seconds = timeout_seconds * WRITE_TIMEOUT_FACTOR
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
    def __init__(
        self,
        engines: Mapping[str, AsyncEngine],
        timeout_seconds: float,
        policy_for: Callable[[str], Policy] | None = None,
        tracer: Tracer | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`policy_for(upstream name)` gives each agency's resilience policy; `clock` is its
        breakers'."""
        self._engines = dict(engines)
        self._timeout = timeout_seconds
        self._write_timeout = timeout_seconds * WRITE_TIMEOUT_FACTOR
        self.guards = {
            region: Guard(
                _upstream(region),
                policy_for(_upstream(region)) if policy_for else Policy(timeout=timeout_seconds),
                clock=clock,
                tracer=tracer,
            )
            for region in self._engines
        }

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
        query = select(enrollments).where(_one_of(column, keys, engine.dialect.name))

        async def read() -> list[Any]:  # the guard holds the deadline
            with _map_sql_errors(region):
                async with engine.connect() as conn:
                    return list((await conn.execute(query)).all())

        return [_record(row) for row in await self.guards[region].read(read)]

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

    async def active_of_person(self, person_id: str) -> tuple[Enrollment, ...]:
        """The person's ACTIVE enrollments at every agency (one SELECT per region, together)."""
        regions = sorted(self._engines)
        batches = await asyncio.gather(
            *(self._select(r, enrollments.c.person_id, [person_id]) for r in regions)
        )
        return tuple(
            e for batch in batches for e in batch if e.status is EnrollmentStatus.ACTIVE
        )

    async def request_of_key(self, key: str) -> str | None:
        """The request hash an agency stored under this idempotency key, if any has (one
        SELECT per region, together). A key names one request nationally: a client reusing it
        for another permit, in whatever region, is told so before anything else is checked.
        The agency's own check inside its write (`_replay`) still decides a race."""
        query = select(enrollment_requests.c.request_hash).where(
            enrollment_requests.c.idempotency_key == key
        )

        async def one(region: str) -> str | None:
            engine = self._engine(region)

            async def read() -> str | None:
                with _map_sql_errors(region):
                    async with engine.connect() as conn:
                        found = (await conn.execute(query)).scalar_one_or_none()
                return None if found is None else str(found)

            return await self.guards[region].read(read)

        stored = await asyncio.gather(*(one(r) for r in sorted(self._engines)))
        return next((h for h in stored if h is not None), None)

    async def every_active(self, region: str) -> list[tuple[str, Enrollment]]:
        """(person id as the agency stored it, enrollment) of every ACTIVE enrollment of the
        region: a whole-table read for an operator's check (`hub check duplicates`), so with
        the write deadline rather than a request's read deadline, and no retries."""
        engine = self._engine(region)
        query = select(enrollments).where(
            enrollments.c.status == EnrollmentStatus.ACTIVE.value
        ).order_by(enrollments.c.ssn)
        with _map_sql_errors(region):
            async with asyncio.timeout(self._write_timeout), engine.connect() as conn:
                rows = (await conn.execute(query)).all()
        return [(row.person_id, _record(row)) for row in rows]

    async def enroll(self, new: NewEnrollment) -> tuple[Enrollment, bool]:
        """Write `new` and give it the region's next SSN: (enrollment, created).

        A key already used with the same request gives the stored enrollment and False.
        WriteConflict (nothing written) if the key was used for another request;
        PersonEnrolled (nothing written) if the permit or its holder already has an active
        enrollment in the region.
        """
        engine = self._engine(new.region)
        return await self.guards[new.region].write(
            lambda: self._enroll(engine, new), deadline=self._write_timeout
        )

    async def _enroll(self, engine: AsyncEngine, new: NewEnrollment) -> tuple[Enrollment, bool]:
        for attempt in range(2):
            with _map_sql_errors(new.region):
                try:
                    async with asyncio.timeout(self._write_timeout), engine.begin() as conn:
                        return await _enroll(conn, new), True
                except _Replayed as replayed:  # raised to roll the allocation back
                    return replayed.enrollment, False
                except IntegrityError:
                    # Only if another writer committed the same key despite the lock; the
                    # second attempt then finds it and replays.
                    if attempt:
                        raise
        raise AssertionError("unreachable")

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


def _one_of(column: Any, keys: Sequence[str], dialect: str) -> ColumnElement[bool]:
    """`column IN keys`; on PostgreSQL `column = ANY(:keys)`, one array parameter.

    A page of 500 keys as 500 parameters costs the hub their rendering on every call, and
    PostgreSQL a new prepared statement for every count of keys; one array costs neither.
    """
    if dialect == "postgresql":
        return column == any_(bindparam("keys", list(keys), type_=ARRAY(column.type)))
    return column.in_(list(keys))


def _rank(record: Enrollment) -> tuple[bool, object]:
    return (record.status is EnrollmentStatus.ACTIVE, record.enrolled_on)


class _Replayed(Exception):
    """The key was already used for this very request: unwind, and answer what it got."""

    def __init__(self, enrollment: Enrollment) -> None:
        super().__init__(enrollment.ssn)
        self.enrollment = enrollment


async def _enroll(conn: AsyncConnection, new: NewEnrollment) -> Enrollment:
    sequence = await _allocate(conn, new.region)  # first: takes the region's write lock
    replay = await _replay(conn, new)
    if replay is not None:
        raise _Replayed(replay)
    active = select(enrollments.c.ssn).where(
        (enrollments.c.permit_number == new.permit_number)
        | (enrollments.c.person_id == new.holder.id),
        enrollments.c.status == EnrollmentStatus.ACTIVE.value,
    )
    if (await conn.execute(active)).first() is not None:
        raise PersonEnrolled(_upstream(new.region), new.region)
    now = dt.datetime.now(dt.UTC)
    enrollment = Enrollment(
        ssn=make_ssn(new.region, sequence),
        permit_number=new.permit_number,
        region=new.region,
        status=EnrollmentStatus.ACTIVE,
        enrolled_on=new.enrolled_on,
        name=new.holder.name,
        nationality=new.holder.nationality,
        employer_credit_code=new.employer_credit_code,
    )
    await _ensure_person(conn, new)
    await conn.execute(
        insert(enrollments).values(
            ssn=enrollment.ssn,
            permit_number=enrollment.permit_number,
            person_id=new.holder.id,
            region=enrollment.region,
            status=enrollment.status.value,
            enrolled_on=enrollment.enrolled_on,
            name=enrollment.name,
            nationality=enrollment.nationality,
            employer_credit_code=enrollment.employer_credit_code,
            created_at=now,
        )
    )
    await conn.execute(
        insert(enrollment_requests).values(
            idempotency_key=new.idempotency_key,
            request_hash=new.request_hash,
            ssn=enrollment.ssn,
            created_at=now,
        )
    )
    return enrollment


async def _allocate(conn: AsyncConnection, region: str) -> int:
    bump = (
        update(ssn_sequences)
        .where(ssn_sequences.c.region == region)
        .values(next_value=ssn_sequences.c.next_value + 1)
    )
    if (await conn.execute(bump)).rowcount != 1:
        raise UpstreamUnavailable(_upstream(region), "the agency has no SSN sequence")
    current = select(ssn_sequences.c.next_value).where(ssn_sequences.c.region == region)
    return int((await conn.execute(current)).scalar_one()) - 1


async def _replay(conn: AsyncConnection, new: NewEnrollment) -> Enrollment | None:
    stored = (
        await conn.execute(
            select(enrollment_requests).where(
                enrollment_requests.c.idempotency_key == new.idempotency_key
            )
        )
    ).first()
    if stored is None:
        return None
    if stored.request_hash != new.request_hash:
        raise WriteConflict(
            _upstream(new.region), "the idempotency key was used for a different request"
        )
    row = (await conn.execute(select(enrollments).where(enrollments.c.ssn == stored.ssn))).one()
    return _record(row)


async def _ensure_person(conn: AsyncConnection, new: NewEnrollment) -> None:
    holder = new.holder
    known = select(persons.c.id).where(persons.c.id == holder.id)
    if (await conn.execute(known)).first() is None:
        await conn.execute(
            insert(persons).values(
                id=holder.id,
                passport_number=holder.passport_number,
                name=holder.name,
                nationality=holder.nationality,
                date_of_birth=holder.date_of_birth,
                gender=holder.gender,
            )
        )
