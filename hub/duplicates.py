"""`hub check duplicates`: data already in the source systems that breaks "one per person".

The hub refuses to make such data (`schema.workflows.one_person`), but the agencies held
records before the hub kept the rule, and an agency may write without the hub. These checks
only read and report, one finding per person: which record to end is a decision for the
agencies, never merged here.

Each check is a function from the sources it reads to its findings; `CHECKS` lists them, so
another invariant (live cards, say) is one more function and one more entry.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from connectors.agency import SqlEnrollmentSource
from connectors.records import Enrollment
from connectors.sources import PermitSource

__all__ = ["CHECKS", "Check", "CheckSources", "Finding", "live_enrollments"]

_WMS_BATCH = 500  # permit numbers per WMS request


@dataclass(frozen=True, slots=True)
class CheckSources:
    """What the checks may read: every agency's database and the WMS."""

    agencies: SqlEnrollmentSource
    permits: PermitSource


@dataclass(frozen=True, slots=True)
class Finding:
    """One person (the WMS holder id) and the records that break the rule for them."""

    check: str
    person: str
    records: tuple[str, ...]  # each "SSN (region)" or the like, for the operator to look up

    def line(self) -> str:
        return f"{self.check}: person {self.person}: {', '.join(self.records)}"


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    reads: str  # which sources, for the operator
    run: Callable[[CheckSources], Awaitable[list[Finding]]]


async def live_enrollments(sources: CheckSources) -> list[Finding]:
    """Persons with more than one ACTIVE enrollment, in one region or several.

    The person of an enrollment is its permit's holder as the WMS knows it (the national
    register); an enrollment whose permit the WMS does not know counts under the person id
    its agency stored.
    """
    found: list[tuple[str, Enrollment]] = []
    for region in sorted(sources.agencies.regions()):
        found += await sources.agencies.every_active(region)
    holders = await _holders(sources.permits, sorted({e.permit_number for _, e in found}))
    by_person: dict[str, list[Enrollment]] = defaultdict(list)
    for stored_person, enrollment in found:
        by_person[holders.get(enrollment.permit_number, stored_person)].append(enrollment)
    return [
        Finding(
            "enrollments", person,
            tuple(f"SSN {e.ssn} ({e.region}, permit {e.permit_number})" for e in enrollments),
        )
        for person, enrollments in sorted(by_person.items())
        if len(enrollments) > 1
    ]


async def _holders(permits: PermitSource, numbers: Sequence[str]) -> dict[str, str]:
    holders: dict[str, str] = {}
    for start in range(0, len(numbers), _WMS_BATCH):
        batch = await permits.permits(numbers[start : start + _WMS_BATCH])
        holders.update({number: p.holder.id for number, p in batch.items()})
    return holders


CHECKS: tuple[Check, ...] = (
    Check(
        "enrollments",
        "every agency database (ACTIVE enrollments) and the WMS (each permit's holder)",
        live_enrollments,
    ),
)
