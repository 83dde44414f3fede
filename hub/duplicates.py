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
from connectors.sources import CardSource, PermitSource
from hub.card_duplicates import find_duplicate_cards
from schema.workflows.live_cards import masked_card_number

__all__ = ["CHECKS", "Check", "CheckSources", "Finding", "live_cards", "live_enrollments"]

_WMS_BATCH = 500  # permit numbers per WMS request


@dataclass(frozen=True, slots=True)
class CheckSources:
    """What the checks may read: every agency's database, the WMS and the card system."""

    agencies: SqlEnrollmentSource
    permits: PermitSource
    cards: CardSource


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


async def live_cards(sources: CheckSources) -> list[Finding]:
    """Persons holding several live cards of one kind across all their SSNs (card numbers
    masked: the operator looks them up in the card system)."""
    found = await find_duplicate_cards(sources.agencies, sources.permits, sources.cards)
    return [
        Finding(
            "cards", duplicate.holder,
            tuple(
                f"{masked_card_number(c.card_number)} ({c.kind.value}, region {c.region}, "
                f"{c.status.value})"
                for c in duplicate.cards
            ),
        )
        for duplicate in found
    ]


CHECKS: tuple[Check, ...] = (
    Check(
        "enrollments",
        "every agency database (ACTIVE enrollments) and the WMS (each permit's holder)",
        live_enrollments,
    ),
    Check(
        "cards",
        "every agency database (SSNs), the WMS (holders) and the card system (live cards)",
        live_cards,
    ),
)
