"""DataLoaders: the only way resolvers reach the source systems (one upstream call per batch).

Built fresh for every request, so nothing cached here outlives the request that loaded it.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from strawberry.dataloader import DataLoader

from connectors.events import EventBus
from connectors.records import Card, Enrollment, Permit, PermitEvent
from connectors.sources import (
    CardSource,
    EnrollmentClaims,
    EnrollmentSource,
    LiveCardRegister,
    PermitSource,
)
from schema.subjects import Touched

__all__ = ["Loaders", "Sources", "note_permits"]


@dataclass(frozen=True, slots=True)
class Sources:
    """The connectors of one hub process, shared by every request."""

    permits: PermitSource
    enrollments: EnrollmentSource
    cards: CardSource
    claims: EnrollmentClaims  # one live enrollment per person, kept in the hub's database
    events: EventBus | None = None  # permit changes, for subscriptions
    # The hub's register of live cards (one per person and kind); None: the rule is not kept.
    live_cards: LiveCardRegister | None = None


def note_permits(touched: Touched, found: Mapping[str, Permit]) -> None:
    """What the audit record names when these permits were read for a request."""
    touched.permits.update(found)
    touched.employers.update(p.employer.credit_code for p in found.values())


@dataclass(frozen=True, slots=True)
class Loaders:
    permit: DataLoader[str, Permit | None]
    history: DataLoader[str, tuple[PermitEvent, ...]]
    permits_of_holder: DataLoader[str, tuple[str, ...]]
    enrollment_of_permit: DataLoader[tuple[str, str], Enrollment | None]
    enrollment: DataLoader[str, Enrollment | None]
    cards: DataLoader[str, tuple[Card, ...]]
    card: DataLoader[str, Card | None]  # by card number

    @classmethod
    def for_request(cls, sources: Sources, touched: Touched) -> Loaders:
        """Loaders for one request; every identifier they return is noted in `touched`."""

        async def load_permits(numbers: list[str]) -> Sequence[Permit | None]:
            found = await sources.permits.permits(numbers)
            note_permits(touched, found)
            return [found.get(n) for n in numbers]

        async def load_histories(numbers: list[str]) -> Sequence[tuple[PermitEvent, ...]]:
            found = await sources.permits.histories(numbers)
            return [found.get(n, ()) for n in numbers]

        async def load_holders(ids: list[str]) -> Sequence[tuple[str, ...]]:
            found = await sources.permits.permits_of_holders(ids)
            return [found.get(i, ()) for i in ids]

        async def load_enrollments_of_permits(
            keys: list[tuple[str, str]],
        ) -> Sequence[Enrollment | BaseException | None]:
            by_region: dict[str, list[str]] = defaultdict(list)
            for region, number in keys:
                by_region[region].append(number)
            served = [r for r in by_region if r in sources.enrollments.regions()]
            batches = await asyncio.gather(
                *(sources.enrollments.by_permits(r, by_region[r]) for r in served),
                return_exceptions=True,
            )
            # A region that failed fails only its own keys; unserved regions have no enrollment.
            results: dict[tuple[str, str], Enrollment | BaseException | None] = {}
            for region, found in zip(served, batches, strict=True):
                for number in by_region[region]:
                    results[(region, number)] = (
                        found if isinstance(found, BaseException) else found.get(number)
                    )
                if not isinstance(found, BaseException):
                    touched.ssns.update(e.ssn for e in found.values())
            return [results.get(k) for k in keys]

        async def load_enrollments(ssns: list[str]) -> Sequence[Enrollment | None]:
            found = await sources.enrollments.by_ssns(ssns)
            touched.ssns.update(found)
            return [found.get(s) for s in ssns]

        async def load_cards(ssns: list[str]) -> Sequence[tuple[Card, ...]]:
            found = await sources.cards.cards(ssns)
            touched.ssns.update(s for s, cards in found.items() if cards)
            return [found.get(s, ()) for s in ssns]

        async def load_cards_by_number(numbers: list[str]) -> Sequence[Card | None]:
            # The card system reads one card per call: a card number is looked up alone.
            found = await asyncio.gather(*(sources.cards.card(n) for n in numbers))
            touched.ssns.update(c.ssn for c in found if c is not None)
            return found

        return cls(
            permit=DataLoader(load_permits, max_batch_size=500),
            history=DataLoader(load_histories, max_batch_size=500),
            permits_of_holder=DataLoader(load_holders, max_batch_size=500),
            enrollment_of_permit=DataLoader(load_enrollments_of_permits, max_batch_size=1000),
            enrollment=DataLoader(load_enrollments, max_batch_size=1000),
            cards=DataLoader(load_cards, max_batch_size=500),
            card=DataLoader(load_cards_by_number, max_batch_size=50),
        )
