"""The small protocols the hub's schema depends on; one implementation module per source system.

Each method takes a batch of keys and makes one upstream call per batch (per region for SQL),
so that DataLoaders above can turn N field resolutions into one request.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Protocol

from joserfc.jwk import Key

from connectors.records import (
    Card,
    CardApplication,
    CardApplicationResult,
    CardKind,
    CardStatus,
    Enrollment,
    EnrollmentClaim,
    LiveCardClaim,
    LiveCardHolding,
    NewEnrollment,
    Permit,
    PermitEvent,
)

__all__ = [
    "CardSource", "EnrollmentClaims", "EnrollmentSource", "LiveCardRegister", "PermitSource",
]


class PermitSource(Protocol):
    """The Work Management System."""

    async def permits(self, numbers: Sequence[str]) -> Mapping[str, Permit]: ...
    async def histories(self, numbers: Sequence[str]) -> Mapping[str, tuple[PermitEvent, ...]]: ...
    async def permits_of_holders(
        self, holder_ids: Sequence[str]
    ) -> Mapping[str, tuple[str, ...]]: ...
    async def qr_key(self, kid: str) -> Key | None: ...
    async def qr(self, number: str) -> str | None: ...
    async def ping(self) -> bool: ...


class EnrollmentSource(Protocol):
    """The regional social-security agencies' databases."""

    def regions(self) -> frozenset[str]: ...
    async def by_permits(self, region: str, numbers: Sequence[str]) -> Mapping[str, Enrollment]: ...
    async def by_ssns(self, ssns: Sequence[str]) -> Mapping[str, Enrollment]: ...
    async def active_of_person(self, person_id: str) -> tuple[Enrollment, ...]: ...
    async def request_of_key(self, key: str) -> str | None: ...
    async def enroll(self, new: NewEnrollment) -> tuple[Enrollment, bool]: ...
    async def ping(self) -> dict[str, bool]: ...


class EnrollmentClaims(Protocol):
    """The hub's register of who holds each person's one live enrollment (one row per person).

    Kept in the hub's own database, the one store every hub instance shares: `claim` is an
    INSERT under a unique key on the person, so of two concurrent claims for a person exactly
    one is held, whichever instance made it. `claim` answers the claim now held for the person:
    the one given (it was free) or the one that was there. `release` and `complete` act only on
    the claim with that id (a compare-and-set: a claim taken over meanwhile is left alone).
    `stale_after`: how long a claim without an SSN may be an agency write still under way.
    """

    @property
    def stale_after(self) -> dt.timedelta: ...
    async def claim(self, claim: EnrollmentClaim) -> EnrollmentClaim: ...
    async def complete(self, claim_id: str, ssn: str, region: str) -> None: ...
    async def release(self, claim_id: str) -> None: ...


class CardSource(Protocol):
    """The card management and service department.

    `apply` sends a whole batch in one call and answers per application, in order; the same
    `batch_key` with another `batch_hash` is a `WriteConflict`. `change_status` is a
    compare-and-set: `WriteConflict` if the card is no longer at `from_` or may not go to `to`.
    """

    async def cards(self, ssns: Sequence[str]) -> Mapping[str, tuple[Card, ...]]: ...
    async def card(self, number: str) -> Card | None: ...
    async def apply(
        self, applications: Sequence[CardApplication], batch_key: str, batch_hash: str
    ) -> list[CardApplicationResult]: ...
    async def change_status(
        self, number: str, from_: CardStatus, to: CardStatus, reason: str | None
    ) -> Card: ...
    async def ping(self) -> bool: ...


class LiveCardRegister(Protocol):
    """At most one live card of each kind per person, kept where every hub instance sees it.

    Implemented by the hub over its own database (a unique (person, kind) row), so two
    instances racing for the same person's card cannot both win. A row is reserved before the
    card system is asked, then confirmed with the card's number, or released.
    """

    async def reserve(self, claims: Sequence[LiveCardClaim]) -> list[LiveCardHolding | None]:
        """Per claim, in order: None if reserved for it now, else what holds its (person, kind)
        (possibly a reservation under the same key: a replay, or another claim of the batch)."""
        ...

    async def confirm(self, claim: LiveCardClaim, card_number: str) -> None:
        """The claim's reservation now holds the card the card system gave it."""
        ...

    async def adopt(self, claim: LiveCardClaim, card: Card) -> None:
        """The claim's reservation now records `card`, a live card found in the source data."""
        ...

    async def release(self, claim: LiveCardClaim) -> None:
        """Drop the claim's reservation (no card was made for it); another's is left alone."""
        ...

    async def drop(self, holding: LiveCardHolding) -> None:
        """Drop `holding` if it is still there unchanged (its card is no longer live, or its
        reservation went stale)."""
        ...

    async def ended(self, card_number: str) -> None:
        """The card left the live states: its (person, kind) is free again."""
        ...

    async def holding(self, person: str, kind: CardKind) -> LiveCardHolding | None: ...
