"""Plain typed records returned by every connector. No GraphQL, no transport types."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "MAX_CARD_APPLICATIONS",
    "Card",
    "CardApplication",
    "CardApplicationResult",
    "CardChannel",
    "CardKind",
    "CardStatus",
    "CardStatusChange",
    "Employer",
    "Enrollment",
    "EnrollmentStatus",
    "Foreigner",
    "LiveCardClaim",
    "LiveCardHolding",
    "NewEnrollment",
    "Permit",
    "PermitCategory",
    "PermitEvent",
    "PermitEventKind",
    "PermitMedium",
    "PermitStatus",
]


class PermitStatus(StrEnum):
    PENDING = "PENDING"
    VALID = "VALID"
    EXPIRED = "EXPIRED"
    CANCELLED = "CANCELLED"
    REVOKED = "REVOKED"


class PermitMedium(StrEnum):
    ELECTRONIC = "ELECTRONIC"
    PHYSICAL_CARD = "PHYSICAL_CARD"


class PermitCategory(StrEnum):
    A = "A"  # high-end talent
    B = "B"  # professional
    C = "C"  # other


class PermitEventKind(StrEnum):
    ISSUED = "ISSUED"
    RENEWED = "RENEWED"
    ALTERED = "ALTERED"
    CANCELLED = "CANCELLED"
    REVOKED = "REVOKED"
    EXPIRED = "EXPIRED"
    REISSUED_ELECTRONIC = "REISSUED_ELECTRONIC"


class EnrollmentStatus(StrEnum):
    ACTIVE = "ACTIVE"
    SUSPENDED = "SUSPENDED"
    TERMINATED = "TERMINATED"


class CardKind(StrEnum):
    PHYSICAL = "PHYSICAL"
    ELECTRONIC = "ELECTRONIC"


class CardStatus(StrEnum):
    APPLIED = "APPLIED"
    IN_PRODUCTION = "IN_PRODUCTION"
    ISSUED = "ISSUED"
    ACTIVE = "ACTIVE"
    REPORTED_LOST = "REPORTED_LOST"
    SUSPENDED = "SUSPENDED"
    REPLACED = "REPLACED"
    CANCELLED = "CANCELLED"


class CardChannel(StrEnum):
    IN_PERSON = "IN_PERSON"
    ONLINE = "ONLINE"
    EMPLOYER_BATCH = "EMPLOYER_BATCH"


@dataclass(frozen=True, slots=True)
class Foreigner:
    id: str
    name: str
    nationality: str  # ISO 3166-1 alpha-3
    passport_number: str
    date_of_birth: dt.date
    gender: str  # "F" | "M" | "X"


@dataclass(frozen=True, slots=True)
class Employer:
    credit_code: str
    name: str
    region: str


@dataclass(frozen=True, slots=True)
class Permit:
    number: str
    status: PermitStatus
    valid_from: dt.date
    valid_until: dt.date
    medium: PermitMedium
    holder: Foreigner
    employer: Employer
    category: PermitCategory
    position: str
    work_location: str  # GB/T 2260 region code
    notification_letter_number: str | None

    def is_valid_on(self, day: dt.date) -> bool:
        return self.status is PermitStatus.VALID and self.valid_from <= day <= self.valid_until


@dataclass(frozen=True, slots=True)
class PermitEvent:
    permit_number: str
    kind: PermitEventKind
    at: dt.datetime
    status: PermitStatus
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class Enrollment:
    ssn: str
    permit_number: str
    region: str
    status: EnrollmentStatus
    enrolled_on: dt.date
    name: str
    nationality: str
    employer_credit_code: str


@dataclass(frozen=True, slots=True)
class NewEnrollment:
    """An enrollment to write at a region's agency, under a client's idempotency key."""

    permit_number: str
    region: str
    holder: Foreigner
    employer_credit_code: str
    enrolled_on: dt.date
    idempotency_key: str
    request_hash: str  # of the request as the client sent it; a reused key must match it


@dataclass(frozen=True, slots=True)
class EnrollmentClaim:
    """The hub's hold on a person's one live enrollment (`connectors.sources.EnrollmentClaims`).

    `ssn` is None while the agency write it guards is under way, or was cut short by a crash or
    a timeout; `claimed_at` lets a later request tell the one from the other.
    """

    person_id: str  # the WMS holder id (`Foreigner.id`)
    claim_id: str
    region: str
    idempotency_key: str
    request_hash: str
    claimed_at: dt.datetime
    ssn: str | None = None


@dataclass(frozen=True, slots=True)
class CardStatusChange:
    status: CardStatus
    at: dt.datetime
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Card:
    card_number: str
    ssn: str
    kind: CardKind
    status: CardStatus
    issued_on: dt.date | None
    region: str
    channel: CardChannel
    history: tuple[CardStatusChange, ...] = ()


MAX_CARD_APPLICATIONS = 1000  # per request to the card system (an employer's batch)


@dataclass(frozen=True, slots=True)
class CardApplication:
    """One card to issue, under an idempotency key; the hub verified the holder beforehand."""

    ssn: str
    kind: CardKind
    channel: CardChannel
    region: str  # of the holder's enrollment
    idempotency_key: str
    request_hash: str  # of the application as the client asked it; a reused key must match it


@dataclass(frozen=True, slots=True)
class CardApplicationResult:
    """The card system's answer to one application: a card, or why it refused (nothing made)."""

    card: Card | None
    created: bool  # False: the key was used before for this application; its card is returned
    conflict: str | None = None


@dataclass(frozen=True, slots=True)
class LiveCardClaim:
    """An application's claim on a person's one live card of a kind (the hub's register).

    `person` is the holder's WMS id: one person may (wrongly) hold several SSNs, but one id.
    """

    person: str
    kind: CardKind
    ssn: str
    region: str  # of the SSN
    idempotency_key: str  # the application's (an item's, in a batch)
    request_hash: str

    def is_replay_of(self, holding: LiveCardHolding) -> bool:
        """The same application again: a retry is not a second card."""
        return (
            holding.idempotency_key == self.idempotency_key
            and holding.request_hash == self.request_hash
        )


@dataclass(frozen=True, slots=True)
class LiveCardHolding:
    """What the register holds for a (person, kind): a live card, or an application's
    reservation not yet answered by the card system (`card_number` None)."""

    person: str
    kind: CardKind
    ssn: str
    region: str
    card_number: str | None
    idempotency_key: str
    request_hash: str
    stale: bool  # a reservation older than the register's lease: its writer is presumed gone
