"""Apply for social security cards, alone or as an employer's batch, and move a card's status.

An application is checked by the hub before the card system hears of it:

    SSN well formed -> the SSN's region in the client's jurisdiction (decided from the SSN
    alone: a refused item costs no source-system call) -> enrollment at its agency, ACTIVE
    -> the enrollment's permit VALID today
    -> name, nationality and passport number match the permit's holder (identity verified)
    -> [batch] the permit's employer is the batch's employer -> channel allowed for the kind
    -> the holder (the permit's WMS holder, whatever SSN) has no other live card of the kind
       (`workflows.live_cards`: a row in the hub's register, held until the card system answers)

then every application that passed goes to the card system in ONE call, which answers per
application (a live card of that kind already there, a reused key: a conflict). Physical cards
come IN_PERSON or ONLINE alone, EMPLOYER_BATCH in a batch; an electronic card only ONLINE, and
it is ACTIVE at once because its holder's identity was verified here. The card's region is the
enrollment's.

Idempotency lives in the card system: a request's key is the batch key, the key of item `i` is
`<key>#<i>`; the batch hash covers the whole canonical input, an item's hash that item, so the
same key with other input is refused (CONFLICT) and a retry gives back the first cards. The
register of live cards holds each application's key too: a key it holds for other input is
that CONFLICT before any other (a live card of the holder's, say). The message names what the
client sent, "another card application" or "another batch of card applications". A batch
whose items all fail here is not sent at all: nothing was made under its key.

A status change reads the card (a card number does not tell its region), refuses a card
outside the client's jurisdiction and a move the lifecycle (`connectors.card_lifecycle`)
forbids without writing anything, then compare-and-sets the card system from the status read;
a card that leaves the live states frees its holder's row in the register.
No GraphQL import here.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from connectors.card_lifecycle import allows, is_live
from connectors.errors import WriteConflict
from connectors.identifiers import InvalidIdentifier, validate_ssn
from connectors.records import (
    MAX_CARD_APPLICATIONS,
    Card,
    CardApplication,
    CardApplicationResult,
    CardChannel,
    CardKind,
    CardStatus,
    Enrollment,
    EnrollmentStatus,
    LiveCardClaim,
    Permit,
)
from connectors.sources import CardSource
from infra.regions import covers, region_of_ssn
from schema.workflows.enrollment import check_idempotency_key, normalised_name
from schema.workflows.errors import (
    KeyReused,
    OutOfJurisdiction,
    WorkflowConflict,
    WorkflowError,
    WorkflowNotFound,
    WorkflowRejected,
)
from schema.workflows.live_cards import LiveCardRule, Reserved

__all__ = [
    "MAX_REASON_LENGTH",
    "BatchCardRequest",
    "BatchItem",
    "CardDesk",
    "CardRequest",
    "CardResult",
    "Identity",
    "ItemOutcome",
    "StatusChange",
    "apply_for_card",
    "apply_for_cards",
    "update_card_status",
]

MAX_REASON_LENGTH = 200
CHANNELS: dict[CardKind, frozenset[CardChannel]] = {
    CardKind.PHYSICAL: frozenset({CardChannel.IN_PERSON, CardChannel.ONLINE}),
    CardKind.ELECTRONIC: frozenset({CardChannel.ONLINE}),
}


@dataclass(frozen=True, slots=True)
class Identity:
    """Who the applicant says the holder is; compared with the permit's holder."""

    name: str
    nationality: str
    passport_number: str

    def canonical(self) -> dict[str, str]:
        """Case and spacing do not make another person (or another request)."""
        return {
            "name": normalised_name(self.name),
            "nationality": self.nationality.strip().upper(),
            "passportNumber": "".join(self.passport_number.split()).upper(),
        }


@dataclass(frozen=True, slots=True)
class CardRequest:
    ssn: str
    kind: CardKind
    channel: CardChannel
    identity: Identity
    idempotency_key: str


@dataclass(frozen=True, slots=True)
class BatchItem:
    ssn: str
    identity: Identity


@dataclass(frozen=True, slots=True)
class BatchCardRequest:
    """An employer's batch: physical cards for its employees, EMPLOYER_BATCH channel."""

    employer_credit_code: str
    idempotency_key: str
    items: tuple[BatchItem, ...]


@dataclass(frozen=True, slots=True)
class CardResult:
    card: Card
    created: bool  # False: an earlier call with the key made it; it is given back


@dataclass(frozen=True, slots=True)
class ItemOutcome:
    """One item of a batch: a card, or the error that stopped it (nothing made for it)."""

    index: int
    ssn: str
    card: Card | None
    created: bool
    error: WorkflowError | None


@dataclass(frozen=True, slots=True)
class StatusChange:
    card_number: str
    to: CardStatus
    reason: str | None = None
    expected: CardStatus | None = None  # if given, the card must still be at this status


@dataclass(frozen=True, slots=True)
class _Wanted:
    """One card to apply for, whatever the mutation that asked for it."""

    ssn: str
    identity: Identity
    kind: CardKind
    channel: CardChannel
    employer_credit_code: str | None  # a batch's employer, which must be the permit's

    def canonical(self) -> dict[str, object]:
        return {
            "ssn": self.ssn, "kind": self.kind.value, "channel": self.channel.value,
            "employer": self.employer_credit_code, **self.identity.canonical(),
        }


def _digest(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


# Connectors reached through the caller's DataLoaders (batched, and noted for the audit log).
EnrollmentLoader = Callable[[list[str]], Awaitable[Sequence[Enrollment | None]]]
PermitLoader = Callable[[list[str]], Awaitable[Sequence[Permit | None]]]
CardLoader = Callable[[str], Awaitable[Card | None]]


@dataclass(frozen=True, slots=True)
class CardDesk:
    """What the card workflows reach for one request: its loaders, the card system, the
    register of live cards (None: not kept, as in a hub without a database of its own), and
    the client's jurisdiction."""

    load_enrollments: EnrollmentLoader
    load_permits: PermitLoader
    load_card: CardLoader
    cards: CardSource
    live_cards: LiveCardRule | None
    jurisdiction: tuple[str, ...]
    today: dt.date


@dataclass(frozen=True, slots=True)
class _Lookups:
    enrollments: dict[str, Enrollment]
    permits: dict[str, Permit]


async def _look_up(
    ssns: list[str], load_enrollments: EnrollmentLoader, load_permits: PermitLoader
) -> _Lookups:
    """Enrollments of the SSNs, then their permits: one batched load each."""
    found = await load_enrollments(ssns)
    enrollments = {e.ssn: e for e in found if e is not None}
    numbers = sorted({e.permit_number for e in enrollments.values()})
    permits = await load_permits(numbers) if numbers else []
    return _Lookups(enrollments, {p.number: p for p in permits if p is not None})


def _verify(wanted: _Wanted, lookups: _Lookups, today: dt.date) -> tuple[Enrollment, Permit]:
    """The enrollment to issue the card under and its permit; WorkflowRejected if the holder
    may not have it."""
    enrollment = lookups.enrollments.get(wanted.ssn)
    if enrollment is None:
        raise WorkflowRejected("no enrollment under this SSN at an agency of the hub")
    if enrollment.status is not EnrollmentStatus.ACTIVE:
        raise WorkflowRejected(f"the enrollment is {enrollment.status.value}, not ACTIVE")
    permit = lookups.permits.get(enrollment.permit_number)
    if permit is None or not permit.is_valid_on(today):
        raise WorkflowRejected("the enrollment's work permit is not VALID today")
    holder = Identity(permit.holder.name, permit.holder.nationality, permit.holder.passport_number)
    if holder.canonical() != wanted.identity.canonical():
        raise WorkflowRejected(
            "name, nationality and passport number do not match the permit's holder"
        )
    if wanted.employer_credit_code not in (None, permit.employer.credit_code):
        raise WorkflowRejected("the permit's employer is not the batch's employer")
    return enrollment, permit


async def _apply(
    wanted: Sequence[_Wanted], key: str, batch_hash: str, desk: CardDesk, what: str
) -> list[ItemOutcome]:
    """Check every item, hold each holder's row in the register, then send the items that
    passed to the card system in one call."""
    errors = _malformed(wanted)
    errors.update(_outside(wanted, desk.jurisdiction, errors))
    well_formed = sorted({w.ssn for i, w in enumerate(wanted) if i not in errors})
    lookups = await _look_up(well_formed, desk.load_enrollments, desk.load_permits)
    applications: dict[int, CardApplication] = {}
    claims: dict[int, LiveCardClaim] = {}
    for index, item in enumerate(wanted):
        if index in errors:
            continue
        try:
            enrollment, permit = _verify(item, lookups, desk.today)
        except WorkflowRejected as exc:
            errors[index] = exc
            continue
        application = CardApplication(
            ssn=item.ssn, kind=item.kind, channel=item.channel, region=enrollment.region,
            idempotency_key=f"{key}#{index}", request_hash=_digest(item.canonical()),
        )
        applications[index] = application
        claims[index] = LiveCardClaim(
            person=permit.holder.id, kind=item.kind, ssn=item.ssn, region=enrollment.region,
            idempotency_key=application.idempotency_key, request_hash=application.request_hash,
        )
    reserved = Reserved()
    if desk.live_cards is not None and claims:
        reserved = await desk.live_cards.reserve(claims)
        if reserved.reused:  # before any other conflict: the key decides first
            await desk.live_cards.abandon(reserved)
            raise KeyReused(what)
        errors.update(reserved.refused)
    sent = {i: a for i, a in applications.items() if i not in errors}
    answered, conflicts = await _send(sent, key, batch_hash, desk, reserved, what)
    errors.update(conflicts)
    return [
        _outcome(i, w, None if i in conflicts else answered.get(i), errors.get(i))
        for i, w in enumerate(wanted)
    ]


async def _send(
    sent: dict[int, CardApplication], key: str, batch_hash: str, desk: CardDesk,
    reserved: Reserved, what: str,
) -> tuple[dict[int, CardApplicationResult], dict[int, WorkflowError]]:
    """One call to the card system; the register then learns what it made. Also returns the
    card system's conflicts with a live card the register now records, told as the register
    tells them. The card system refusing the key (used with other input) is a
    WorkflowConflict naming `what` the key was used for: the client sent one key, whatever
    the card system calls it."""
    rule = desk.live_cards
    try:
        answers = await desk.cards.apply(list(sent.values()), key, batch_hash)
    except WriteConflict:  # the key was used for other input: nothing was made
        if rule is not None:
            await rule.abandon(reserved)
        raise KeyReused(what) from None
    # Any other failure leaves the rows held: the card system may have made the cards, and the
    # rows' lease lets a later application look (a retry with the same key goes through).
    answered = dict(zip(sent, answers, strict=True))
    conflicts: dict[int, WorkflowError] = {}
    if rule is not None:
        conflicts.update(await rule.settle(reserved, answered))
    return answered, conflicts


def _outside(
    wanted: Sequence[_Wanted], jurisdiction: tuple[str, ...], errors: dict[int, WorkflowError]
) -> dict[int, WorkflowError]:
    """The well-formed items whose SSN is of a region the client does not serve."""
    return {
        index: OutOfJurisdiction(
            f"the SSN is of region {region_of_ssn(item.ssn)}, outside the client's jurisdiction"
        )
        for index, item in enumerate(wanted)
        if index not in errors and not covers(jurisdiction, region_of_ssn(item.ssn))
    }


def _malformed(wanted: Sequence[_Wanted]) -> dict[int, WorkflowError]:
    """The items whose SSN fails its format or check character, by index."""
    errors: dict[int, WorkflowError] = {}
    for index, item in enumerate(wanted):
        try:
            validate_ssn(item.ssn)
        except InvalidIdentifier as exc:
            errors[index] = WorkflowRejected(str(exc))
    return errors


def _outcome(
    index: int, item: _Wanted, answer: CardApplicationResult | None, error: WorkflowError | None
) -> ItemOutcome:
    if answer is None:  # refused here, never sent
        return ItemOutcome(index, item.ssn, None, False, error)
    if answer.conflict is not None:
        return ItemOutcome(index, item.ssn, None, False, WorkflowConflict(answer.conflict))
    return ItemOutcome(index, item.ssn, answer.card, answer.created, None)


async def apply_for_card(request: CardRequest, desk: CardDesk) -> CardResult:
    """One card for one holder (IN_PERSON or ONLINE; an electronic card only ONLINE)."""
    check_idempotency_key(request.idempotency_key)
    if request.channel not in CHANNELS[request.kind]:
        raise WorkflowRejected(
            f"{request.kind.value} cards are not applied for {request.channel.value}"
        )
    wanted = _Wanted(request.ssn, request.identity, request.kind, request.channel, None)
    (outcome,) = await _apply(
        [wanted], request.idempotency_key, _digest(wanted.canonical()), desk,
        "card application",
    )
    if outcome.error is not None:
        raise outcome.error
    assert outcome.card is not None
    return CardResult(outcome.card, outcome.created)


async def apply_for_cards(request: BatchCardRequest, desk: CardDesk) -> list[ItemOutcome]:
    """An employer's batch: one outcome per item, in order; failed items are never sent."""
    check_idempotency_key(request.idempotency_key)
    if not 0 < len(request.items) <= MAX_CARD_APPLICATIONS:
        raise WorkflowRejected(f"items: 1 to {MAX_CARD_APPLICATIONS} per batch")
    wanted = [
        _Wanted(
            item.ssn, item.identity, CardKind.PHYSICAL, CardChannel.EMPLOYER_BATCH,
            request.employer_credit_code,
        )
        for item in request.items
    ]
    batch_hash = _digest([w.canonical() for w in wanted])
    return await _apply(
        wanted, request.idempotency_key, batch_hash, desk, "batch of card applications"
    )


async def update_card_status(change: StatusChange, desk: CardDesk) -> Card:
    """Move a card along its lifecycle; an illegal move is a WorkflowConflict, a card outside
    the client's jurisdiction OutOfJurisdiction: either way nothing written."""
    if change.reason is not None and not (
        len(change.reason) <= MAX_REASON_LENGTH and change.reason.isprintable()
    ):
        raise WorkflowRejected(f"reason: at most {MAX_REASON_LENGTH} printable characters")
    card = await desk.load_card(change.card_number)
    if card is None:
        raise WorkflowNotFound("the card system has no card with this number")
    if not covers(desk.jurisdiction, card.region):
        raise OutOfJurisdiction(
            f"the card is of region {card.region}, outside the client's jurisdiction"
        )
    if change.expected is not None and card.status is not change.expected:
        raise WorkflowConflict(f"the card is {card.status.value}, not {change.expected.value}")
    if not allows(card.kind, card.status, change.to):
        raise WorkflowConflict(
            f"a {card.kind.value} card cannot go from {card.status.value} to {change.to.value}"
        )
    changed = await desk.cards.change_status(
        card.card_number, card.status, change.to, change.reason
    )
    if desk.live_cards is not None and not is_live(changed.status):
        await desk.live_cards.register.ended(changed.card_number)
    return changed
