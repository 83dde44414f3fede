"""Report people who already hold more than one live card of a kind in the source systems.

The hub refuses a second live card of a kind for one person from now on (`hub.live_cards`),
but the card system may hold such pairs from before: a person enrolled twice (an SSN in each
of two regions) and carded under each. They are reported, never merged or cancelled here: which
card stays is the card department's decision. `hub check duplicates` prints these lines.

    every agency's enrollments (SSN, permit) -> the permits' holders (WMS) -> each holder's
    SSNs -> their cards (card system), in pages -> holders with two or more live cards of a kind

A line names the holder by WMS id and each card by its masked number, region and status:
no full identity document or card number is printed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import select

from connectors import agency_tables
from connectors.agency import SqlEnrollmentSource
from connectors.card_lifecycle import is_live
from connectors.records import Card, CardKind
from connectors.sources import CardSource, PermitSource
from schema.workflows.live_cards import masked_card_number

__all__ = ["DuplicateCards", "find_duplicate_cards"]

_PAGE = 500  # SSNs or permits per call to a source system (their batch bound)


@dataclass(frozen=True, slots=True)
class DuplicateCards:
    """One person's live cards of one kind, when there are several."""

    holder: str  # the WMS holder id
    kind: CardKind
    cards: tuple[Card, ...]

    def line(self) -> str:
        listed = ", ".join(
            f"{masked_card_number(c.card_number)} (region {c.region}, {c.status.value})"
            for c in self.cards
        )
        return f"holder {self.holder}: {len(self.cards)} live {self.kind.value} cards: {listed}"


async def find_duplicate_cards(
    enrollments: SqlEnrollmentSource, permits: PermitSource, cards: CardSource
) -> list[DuplicateCards]:
    """Every person holding several live cards of one kind, across all their SSNs."""
    permit_of_ssn: dict[str, str] = {}
    async for ssn, number in _enrolled(enrollments):
        permit_of_ssn[ssn] = number
    holder_of_permit: dict[str, str] = {}
    for page in _pages(sorted(set(permit_of_ssn.values()))):
        found = await permits.permits(page)
        holder_of_permit.update((n, p.holder.id) for n, p in found.items())
    live: dict[tuple[str, CardKind], list[Card]] = defaultdict(list)
    for page in _pages(sorted(permit_of_ssn)):
        for ssn, held in (await cards.cards(page)).items():
            holder = holder_of_permit.get(permit_of_ssn[ssn])
            if holder is None:  # a permit the WMS no longer has: no person to group by
                continue
            for card in held:
                if is_live(card.status):
                    live[(holder, card.kind)].append(card)
    return [
        DuplicateCards(holder, kind, tuple(sorted(found, key=lambda c: c.card_number)))
        for (holder, kind), found in sorted(live.items())
        if len(found) > 1
    ]


async def _enrolled(enrollments: SqlEnrollmentSource) -> AsyncIterator[tuple[str, str]]:
    """(SSN, permit number) of every enrollment of every agency, streamed by region."""
    table = agency_tables.enrollments
    for region in sorted(enrollments.engines):
        async with enrollments.engines[region].connect() as conn:
            result = await conn.stream(
                select(table.c.ssn, table.c.permit_number).order_by(table.c.ssn)
            )
            async for row in result:
                yield row.ssn, row.permit_number


def _pages(items: Sequence[str]) -> Iterable[list[str]]:
    for start in range(0, len(items), _PAGE):
        yield list(items[start : start + _PAGE])
