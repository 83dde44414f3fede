"""The enrollment claims in the hub's database (`connectors.sources.EnrollmentClaims`).

The hub's database is the one store every hub instance shares, and its primary key on the
person decides which of several concurrent claims is held: an INSERT, on PostgreSQL or SQLite,
with no lock taken in any process. The rule they keep and how a claim lives and dies are
described in `schema.workflows.one_person`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from connectors.agency import WRITE_TIMEOUT_FACTOR
from connectors.errors import UpstreamUnavailable
from connectors.records import EnrollmentClaim
from hub.tables import enrollment_claims

__all__ = ["SqlEnrollmentClaims", "stale_after"]

_MIN_STALE = dt.timedelta(minutes=1)
_ATTEMPTS = 3  # a claim deleted between our failed INSERT and our SELECT: insert again


def stale_after(upstream_timeout_seconds: float) -> dt.timedelta:
    """Well past the longest an agency write may take (its deadline), and never under a
    minute: a claim younger than this may still be a write under way."""
    deadline = dt.timedelta(seconds=upstream_timeout_seconds * WRITE_TIMEOUT_FACTOR)
    return max(_MIN_STALE, 3 * deadline)


@contextmanager
def _unavailable() -> Iterator[None]:
    """The hub's database failing is answered like a source system failing: nothing written."""
    try:
        yield
    except (SQLAlchemyError, OSError):
        raise UpstreamUnavailable("hub-database", "the enrollment claims cannot be read") from None


def _aware(moment: dt.datetime) -> dt.datetime:
    """SQLite gives back naive datetimes; every one stored here is UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


def _claim(row: Any) -> EnrollmentClaim:
    return EnrollmentClaim(
        person_id=row.person_id,
        claim_id=row.claim_id,
        region=row.region,
        idempotency_key=row.idempotency_key,
        request_hash=row.request_hash,
        claimed_at=_aware(row.claimed_at),
        ssn=row.ssn,
    )


class SqlEnrollmentClaims:
    def __init__(self, engine: AsyncEngine, stale_after: dt.timedelta) -> None:
        self._engine = engine
        self._stale_after = stale_after

    @property
    def stale_after(self) -> dt.timedelta:
        return self._stale_after

    async def claim(self, claim: EnrollmentClaim) -> EnrollmentClaim:
        row = {
            "person_id": claim.person_id,
            "claim_id": claim.claim_id,
            "region": claim.region,
            "idempotency_key": claim.idempotency_key,
            "request_hash": claim.request_hash,
            "ssn": claim.ssn,
            "claimed_at": claim.claimed_at,
        }
        held_now = select(enrollment_claims).where(
            enrollment_claims.c.person_id == claim.person_id
        )
        with _unavailable():
            for _ in range(_ATTEMPTS):
                try:
                    async with self._engine.begin() as conn:
                        await conn.execute(insert(enrollment_claims).values(**row))
                    return claim
                except IntegrityError:
                    pass  # the person is claimed: by whom?
                async with self._engine.connect() as conn:
                    held = (await conn.execute(held_now)).first()
                if held is not None:
                    return _claim(held)
        raise UpstreamUnavailable("hub-database", "the person's claim keeps changing")

    async def complete(self, claim_id: str, ssn: str, region: str) -> None:
        with _unavailable():
            async with self._engine.begin() as conn:
                await conn.execute(
                    update(enrollment_claims)
                    .where(enrollment_claims.c.claim_id == claim_id)
                    .values(ssn=ssn, region=region)
                )

    async def release(self, claim_id: str) -> None:
        with _unavailable():
            async with self._engine.begin() as conn:
                await conn.execute(
                    delete(enrollment_claims).where(enrollment_claims.c.claim_id == claim_id)
                )
