"""One person, at most one live card of each kind, across all of the person's SSNs.

The card system refuses a second live card of a kind under one SSN; it cannot see that two
SSNs (say one in Wuhan, one in Yichang, from an old double enrollment) are one person. The hub
can: the person is the permit holder's WMS id. Before an application reaches the card system:

    reserve (person, kind) in the hub's register (`LiveCardRegister`: a database row that only
    one application at a time can hold, whichever hub instance it came to)
    -> held by a live card: CONFLICT, `existingCard` (masked number, region, kind)
       held by a card no longer live, or by a reservation whose writer died: taken over
       held by the same application (its idempotency key and input): a retry, let through
    -> the holder's cards under every SSN of theirs (WMS permits -> every agency's enrollment
       of each -> the card system): a live card of the kind under another SSN is CONFLICT
       (and is recorded in the register, so the next application is refused at once)

After the card system answered, the reservation is confirmed with the card made (or given
back to a retry), or released when none was made; it is kept when the answer never came (a
timeout: the card may exist), until its lease runs out and the next application looks.

"Live" is the lifecycle's (`connectors.card_lifecycle.is_live`): every status but REPLACED
and CANCELLED. A card REPORTED_LOST is still live, since it may be found (back to ACTIVE); the
holder gets a replacement once it is marked REPLACED, which frees the person's row.
No GraphQL import here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field

from connectors.card_lifecycle import is_live
from connectors.records import (
    Card,
    CardApplicationResult,
    Enrollment,
    LiveCardClaim,
    LiveCardHolding,
)
from connectors.sources import LiveCardRegister
from schema.workflows.errors import WorkflowConflict

__all__ = ["HolderCards", "LiveCardRule", "Reserved", "masked_card_number"]

PermitsOfHolders = Callable[[list[str]], Awaitable[Sequence[tuple[str, ...]]]]
EnrollmentsOfPermits = Callable[[list[tuple[str, str]]], Awaitable[Sequence[Enrollment | None]]]
CardsOfSsns = Callable[[list[str]], Awaitable[Sequence[tuple[Card, ...]]]]
CardByNumber = Callable[[str], Awaitable[Card | None]]


def masked_card_number(number: str) -> str:
    """Enough for the holder and the clerk to tell which card it is, not the card number:
    its letters and its last four digits."""
    letters = number[: len(number) - len(number.lstrip("EH"))]
    return letters + "*" * (len(number) - len(letters) - 4) + number[-4:]


def _existing(card: Card) -> WorkflowConflict:
    return WorkflowConflict(
        f"the holder already holds a live {card.kind.value} card, under this SSN or another",
        existingCard={
            "cardNumber": masked_card_number(card.card_number),
            "kind": card.kind.value,
            "region": card.region,
        },
    )


def _pending(holding: LiveCardHolding) -> WorkflowConflict:
    return WorkflowConflict(
        f"another application for the holder's {holding.kind.value} card is under way",
        existingCard={"cardNumber": None, "kind": holding.kind.value, "region": holding.region},
    )


@dataclass(frozen=True, slots=True)
class HolderCards:
    """Reads every card of a person, under each SSN they have in any region the hub serves."""

    permits_of_holders: PermitsOfHolders
    enrollments_of_permits: EnrollmentsOfPermits
    cards_of_ssns: CardsOfSsns
    regions: frozenset[str]

    async def live(self, persons: Sequence[str], known: Mapping[str, str]) -> dict[str, list[Card]]:
        """Each person's live cards; `known`: SSN -> person, the SSNs already in hand."""
        ids = sorted(set(persons))
        permits = dict(zip(ids, await self.permits_of_holders(ids), strict=True))
        keys = sorted({(r, n) for ns in permits.values() for n in ns for r in self.regions})
        person_of_permit = {n: p for p, numbers in permits.items() for n in numbers}
        owners = dict(known)
        for (_, number), enrollment in zip(
            keys, await self.enrollments_of_permits(keys) if keys else [], strict=True
        ):
            if enrollment is not None:
                owners[enrollment.ssn] = person_of_permit[number]
        ssns = sorted(owners)
        found: dict[str, list[Card]] = {p: [] for p in ids}
        for ssn, cards in zip(ssns, await self.cards_of_ssns(ssns) if ssns else [], strict=True):
            found.setdefault(owners[ssn], []).extend(c for c in cards if is_live(c.status))
        return found


@dataclass(slots=True)
class Reserved:
    """The outcome of `LiveCardRule.reserve`, by item index."""

    refused: dict[int, WorkflowConflict] = field(default_factory=dict)
    owned: dict[int, LiveCardClaim] = field(default_factory=dict)  # rows this request holds
    # The live card of the kind already under the claim's own SSN: the card system decides
    # (a retry of its application gets it back; anything else is its conflict).
    same_ssn: dict[int, Card] = field(default_factory=dict)
    # Refused while another application held the row, by what they wait for (person, kind):
    # when that is an item of the same batch, its card is what they are told about.
    waiting: dict[int, tuple[str, str]] = field(default_factory=dict)
    # Items whose idempotency key the register holds for another application (other input):
    # the whole request is a conflict of its key, whatever else is wrong with it.
    reused: set[int] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class LiveCardRule:
    register: LiveCardRegister
    holders: HolderCards
    load_card: CardByNumber

    async def reserve(self, claims: Mapping[int, LiveCardClaim]) -> Reserved:
        """Hold each claim's (person, kind) or say why not; nothing is sent anywhere but the
        register and the source systems' reads."""
        reserved = Reserved()
        retry = await self._take(claims, reserved)
        if retry:  # once: rows that were stale or dead were dropped; what holds them now wins
            again = await self._take(retry, reserved, last=True)
            assert not again
        await self._look_at_holders(reserved)
        return reserved

    async def _take(
        self, claims: Mapping[int, LiveCardClaim], reserved: Reserved, *, last: bool = False
    ) -> dict[int, LiveCardClaim]:
        answers = await self.register.reserve(list(claims.values()))
        held = {i: h for i, h in zip(claims, answers, strict=True) if h is not None}
        reserved.owned.update((i, c) for i, c in claims.items() if i not in held)
        numbers = sorted({h.card_number for h in held.values() if h.card_number is not None})
        cards = dict(zip(numbers, await asyncio.gather(*map(self.load_card, numbers)), strict=True))
        retry: dict[int, LiveCardClaim] = {}
        for index, holding in held.items():
            claim = claims[index]
            if claim.is_replay_of(holding):
                # A retry: of an unanswered application, it takes the row over; of an answered
                # one, it goes to the card system, which gives the first card back.
                if holding.card_number is None:
                    reserved.owned[index] = claim
                continue
            if holding.idempotency_key == claim.idempotency_key:  # the key, with other input
                reserved.reused.add(index)
                continue
            card = cards.get(holding.card_number) if holding.card_number else None
            if card is not None and is_live(card.status) and card.kind is claim.kind:
                reserved.refused[index] = _existing(card)
            elif last or (holding.card_number is None and not holding.stale):
                reserved.refused[index] = _pending(holding)
                reserved.waiting[index] = (claim.person, claim.kind.value)
            else:
                await self.register.drop(holding)
                retry[index] = claim
        return retry

    async def _look_at_holders(self, reserved: Reserved) -> None:
        """The source systems' own cards of the persons whose rows this request holds."""
        fresh = dict(reserved.owned)
        if not fresh:
            return
        known = {c.ssn: c.person for c in fresh.values()}
        try:
            live = await self.holders.live([c.person for c in fresh.values()], known)
        except BaseException:
            await asyncio.gather(*(self.register.release(c) for c in fresh.values()))
            raise
        for index, claim in fresh.items():
            mine = [c for c in live.get(claim.person, ()) if c.kind is claim.kind]
            elsewhere = [c for c in mine if c.ssn != claim.ssn]
            if elsewhere:
                await self.register.adopt(claim, elsewhere[0])
                del reserved.owned[index]
                reserved.refused[index] = _existing(elsewhere[0])
            elif mine:
                reserved.same_ssn[index] = mine[0]

    async def settle(
        self, reserved: Reserved, answers: Mapping[int, CardApplicationResult]
    ) -> dict[int, WorkflowConflict]:
        """Confirm the rows whose application made (or gave back) a live card; record a card
        found under the claim's own SSN; release the rest. Returns the conflicts with such a
        card, told as every later application for the holder is told."""
        conflicts: dict[int, WorkflowConflict] = {}

        async def one(index: int, claim: LiveCardClaim) -> None:
            card = _live_card(answers.get(index))
            if card is not None:
                await self.register.confirm(claim, card.card_number)
            elif index in reserved.same_ssn:
                await self.register.adopt(claim, reserved.same_ssn[index])
                conflicts[index] = _existing(reserved.same_ssn[index])
            else:
                await self.register.release(claim)

        await asyncio.gather(*(one(i, c) for i, c in reserved.owned.items()))
        made = {
            (claim.person, claim.kind.value): card
            for index, claim in reserved.owned.items()
            if (card := _live_card(answers.get(index))) is not None
        }
        for index, held_for in reserved.waiting.items():
            if held_for in made:
                conflicts[index] = _existing(made[held_for])
        return conflicts

    async def abandon(self, reserved: Reserved) -> None:
        """The card system refused the whole call: nothing was made for any row held."""
        await asyncio.gather(*(self.register.release(c) for c in reserved.owned.values()))


def _live_card(answer: CardApplicationResult | None) -> Card | None:
    """The live card an application made or was given back, if any."""
    card = answer.card if answer is not None else None
    return card if card is not None and is_live(card.status) else None
