"""The GraphQL face of the card workflows (`applyForCard`, `applyForCards`, `updateCardStatus`).

Inputs become workflow requests, outcomes become payloads; the rules are in `workflows.cards`.
A batch reports its items' errors inside the data (`CardApplicationResult.error`, with the
code the same error would have as a whole-request error), so one bad item never fails the
others. The card inside a payload is a `SocialSecurityCard`, whose fields keep their own
scopes in `schema.policy`.
"""

from __future__ import annotations

import strawberry

from connectors import records
from schema.errors import code_for
from schema.types import CardChannel, CardKind, CardStatus, Ctx, SocialSecurityCard
from schema.workflows.cards import (
    BatchCardRequest,
    BatchItem,
    CardDesk,
    CardRequest,
    Identity,
    ItemOutcome,
    StatusChange,
    apply_for_card,
    apply_for_cards,
    update_card_status,
)
from schema.workflows.errors import OutOfJurisdiction, WorkflowConflict
from schema.workflows.live_cards import HolderCards, LiveCardRule

__all__ = [
    "BatchCardApplicationInput",
    "BatchCardApplicationItem",
    "BatchCardApplicationPayload",
    "CardApplicationError",
    "CardApplicationInput",
    "CardApplicationPayload",
    "CardApplicationResult",
    "ExistingCard",
    "UpdateCardStatusInput",
    "UpdateCardStatusPayload",
    "apply_batch",
    "apply_one",
    "change_status",
]

_KEY_DESCRIPTION = (
    "8-128 printable ASCII characters; a retry with the same key and input returns the first "
    "result, the same key with other input is a CONFLICT."
)


@strawberry.input(description="One card for one holder, applied for IN_PERSON or ONLINE.")
class CardApplicationInput:
    ssn: strawberry.ID
    kind: CardKind  # type: ignore[valid-type]
    channel: CardChannel = strawberry.field(  # type: ignore[valid-type]
        description="IN_PERSON or ONLINE; an ELECTRONIC card only ONLINE."
    )
    name: str = strawberry.field(description="As on the permit; case and spacing are ignored.")
    nationality: str = strawberry.field(description="ISO 3166-1 alpha-3.")
    passport_number: str
    idempotency_key: str = strawberry.field(description=_KEY_DESCRIPTION)

    def request(self) -> CardRequest:
        return CardRequest(
            ssn=str(self.ssn),
            kind=self.kind,
            channel=self.channel,
            identity=Identity(self.name, self.nationality, self.passport_number),
            idempotency_key=self.idempotency_key,
        )


@strawberry.input(description="One employee of a batch: the holder to issue a card to.")
class BatchCardApplicationItem:
    ssn: strawberry.ID = strawberry.field(
        description="Checked with its item: a malformed SSN fails that item only."
    )
    name: str
    nationality: str
    passport_number: str

    def item(self) -> BatchItem:
        return BatchItem(str(self.ssn), Identity(self.name, self.nationality, self.passport_number))


@strawberry.input(description="An employer's batch of physical cards (EMPLOYER_BATCH), 1-1000.")
class BatchCardApplicationInput:
    employer_credit_code: strawberry.ID = strawberry.field(
        description="Every item's permit must be of this employer."
    )
    idempotency_key: str = strawberry.field(description=_KEY_DESCRIPTION + " Covers the batch.")
    items: list[BatchCardApplicationItem]

    def request(self) -> BatchCardRequest:
        return BatchCardRequest(
            employer_credit_code=str(self.employer_credit_code),
            idempotency_key=self.idempotency_key,
            items=tuple(i.item() for i in self.items),
        )


@strawberry.input(description="Move a card along its lifecycle; illegal moves are a CONFLICT.")
class UpdateCardStatusInput:
    card_number: strawberry.ID
    status: CardStatus = strawberry.field(  # type: ignore[valid-type]
        description="The status to move to."
    )
    expected_status: CardStatus | None = strawberry.field(  # type: ignore[valid-type]
        default=None, description="If given, the card must still be at it (else CONFLICT)."
    )
    reason: str | None = strawberry.field(default=None, description="At most 200 characters.")

    def change(self) -> StatusChange:
        return StatusChange(
            card_number=str(self.card_number),
            to=self.status,
            reason=self.reason,
            expected=self.expected_status,
        )


@strawberry.type
class CardApplicationPayload:
    card: SocialSecurityCard
    created: bool = strawberry.field(description="False when an earlier call with the key did.")


@strawberry.type(description="The holder's live card that made an application a CONFLICT.")
class ExistingCard:
    card_number: str | None = strawberry.field(
        description="Masked: its letters and last four digits; null while another "
        "application for it is under way."
    )
    kind: CardKind  # type: ignore[valid-type]
    region: strawberry.ID


@strawberry.type(description="Why one item of a batch got no card; nothing was made for it.")
class CardApplicationError:
    code: str = strawberry.field(description="BAD_USER_INPUT, FORBIDDEN or CONFLICT.")
    message: str
    reason: str | None = strawberry.field(
        default=None, description="OUT_OF_JURISDICTION for a FORBIDDEN item."
    )
    existing_card: ExistingCard | None = strawberry.field(
        default=None, description="For a CONFLICT with the holder's live card of the kind."
    )

    @classmethod
    def of(cls, error: Exception) -> CardApplicationError:
        extensions = getattr(error, "extensions", {})
        existing = extensions.get("existingCard") if isinstance(error, WorkflowConflict) else None
        return cls(
            code=code_for(error),
            message=str(error),
            reason=extensions.get("reason"),
            existing_card=ExistingCard(
                card_number=existing["cardNumber"],
                kind=CardKind[existing["kind"]],
                region=strawberry.ID(existing["region"]),
            )
            if existing
            else None,
        )


@strawberry.type
class CardApplicationResult:
    index: int = strawberry.field(description="The item's position in the input, from 0.")
    ssn: strawberry.ID
    card: SocialSecurityCard | None
    created: bool
    error: CardApplicationError | None

    @classmethod
    def of(cls, outcome: ItemOutcome) -> CardApplicationResult:
        error = outcome.error
        return cls(
            index=outcome.index,
            ssn=strawberry.ID(outcome.ssn),
            card=SocialSecurityCard.of(outcome.card) if outcome.card else None,
            created=outcome.created,
            error=CardApplicationError.of(error) if error else None,
        )


@strawberry.type
class BatchCardApplicationPayload:
    results: list[CardApplicationResult] = strawberry.field(
        description="One per item, in input order."
    )
    total: int
    created: int = strawberry.field(description="Cards made by this call.")
    replayed: int = strawberry.field(description="Cards an earlier call with the key made.")
    failed: int = strawberry.field(description="Items with an error.")

    @classmethod
    def of(cls, outcomes: list[ItemOutcome]) -> BatchCardApplicationPayload:
        made = sum(o.created for o in outcomes)
        failed = sum(o.error is not None for o in outcomes)
        return cls(
            results=[CardApplicationResult.of(o) for o in outcomes],
            total=len(outcomes),
            created=made,
            replayed=len(outcomes) - made - failed,
            failed=failed,
        )


@strawberry.type
class UpdateCardStatusPayload:
    card: SocialSecurityCard


def _desk(info: Ctx) -> CardDesk:
    """The card workflows' view of this request: its loaders (batched, noted for the audit
    record), the card system, the register of live cards, the client's jurisdiction."""
    context = info.context
    loaders, sources = context.loaders, context.sources
    rule = None
    if sources.live_cards is not None:
        holders = HolderCards(
            permits_of_holders=loaders.permits_of_holder.load_many,
            enrollments_of_permits=loaders.enrollment_of_permit.load_many,
            cards_of_ssns=loaders.cards.load_many,
            regions=sources.enrollments.regions(),
        )
        rule = LiveCardRule(sources.live_cards, holders, loaders.card.load)
    return CardDesk(
        load_enrollments=loaders.enrollment.load_many,
        load_permits=loaders.permit.load_many,
        load_card=loaders.card.load,
        cards=sources.cards,
        live_cards=rule,
        jurisdiction=context.jurisdiction,
        today=context.today,
    )


def _note_holders(info: Ctx, cards: list[records.Card]) -> None:
    """The holders of the cards written are subjects of the request's audit record."""
    info.context.touched.ssns.update(c.ssn for c in cards)


async def apply_one(info: Ctx, input: CardApplicationInput) -> CardApplicationPayload:
    request = input.request()
    try:
        result = await apply_for_card(request, _desk(info))
    except OutOfJurisdiction:
        info.context.touched.refused.add(request.ssn)  # the audit record names who was asked for
        raise
    _note_holders(info, [result.card])
    card = SocialSecurityCard.of(result.card)
    return CardApplicationPayload(card=card, created=result.created)


async def apply_batch(info: Ctx, input: BatchCardApplicationInput) -> BatchCardApplicationPayload:
    context = info.context
    outcomes = await apply_for_cards(input.request(), _desk(info))
    _note_holders(info, [o.card for o in outcomes if o.card is not None])
    context.touched.refused.update(
        o.ssn for o in outcomes if isinstance(o.error, OutOfJurisdiction)
    )
    # The audit record names the failed items' codes, and the request is PARTIAL (DENIED if
    # every item was refused for the jurisdiction).
    context.touched.item_errors.update(code_for(o.error) for o in outcomes if o.error)
    context.touched.items_done |= any(o.error is None for o in outcomes)
    return BatchCardApplicationPayload.of(outcomes)


async def change_status(info: Ctx, input: UpdateCardStatusInput) -> UpdateCardStatusPayload:
    change = input.change()
    try:
        card = await update_card_status(change, _desk(info))
    except OutOfJurisdiction:
        info.context.touched.refused.add(change.card_number)
        raise
    _note_holders(info, [card])
    return UpdateCardStatusPayload(card=SocialSecurityCard.of(card))
