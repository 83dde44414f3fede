"""Simulated SSC card management system: the cards issued for each social security number.

A real HTTP server speaking the wire format of `connectors.wire`. It starts from the cards of a
`Dataset` and keeps its own state in memory (the dataset is never modified); every write runs
under one asyncio.Lock and follows the lifecycle of `connectors.card_lifecycle`.

    GET  /cards?ssn=...          {"cards": [card]}  (empty list for an unknown SSN)
    POST /cards:batch            {"ssns": [...]} → {"cards": {ssn: [card]}}, every SSN, <= 500
    POST /cards:apply            {"batchKey", "batchHash", "applications": [application]}, 1..1000
                                 → {"results": [{"card", "created", "conflict"}]}, in order;
                                 409 if the batch key was used with another batch hash
    GET  /cards/{number}         {"card": card}, or 404
    POST /cards/{number}/status  {"from", "to", "reason"?} → {"card": card}; compare-and-set:
                                 409 if the card is not at `from` or the lifecycle forbids `to`
    GET  /healthz                {"status": "ok"}

Applications are answered one by one. A key seen before with the same request hash gives back
its first card (`created: false`); with another hash, or for an SSN that already holds a live
card of that kind, the item gets a `conflict` and nothing is made. A new physical card starts
APPLIED; an electronic one ACTIVE (the hub verified the holder first, see the lifecycle).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route

from connectors.card_lifecycle import allows, birth_history, is_live
from connectors.identifiers import (
    InvalidIdentifier,
    make_card_number,
    validate_card_number,
    validate_ssn,
)
from connectors.records import (
    MAX_CARD_APPLICATIONS,
    Card,
    CardApplication,
    CardApplicationResult,
    CardKind,
    CardStatus,
    CardStatusChange,
)
from connectors.wire import (
    WireFormatError,
    application_from_wire,
    application_result_to_wire,
    card_to_wire,
)
from simulators._http import (
    BadRequest,
    JSONBody,
    healthz,
    not_found,
    read_id_list,
    read_object,
    simulator_app,
)
from simulators.synthetic import Dataset

__all__ = ["build_cards_app"]

_MAX_KEY_LENGTH = 256


class _Refused(Exception):
    """The write contradicts the card system's state; answered 409 and nothing changed."""


class _CardStore:
    """Every card by number and by SSN, plus the idempotency records of applications."""

    def __init__(self, dataset: Dataset) -> None:
        self.lock = asyncio.Lock()
        self._cards: dict[str, Card] = {}
        self._numbers_of: dict[str, list[str]] = {}
        for ssn, cards in dataset.cards.items():
            self._numbers_of[ssn] = [c.card_number for c in cards]
            self._cards.update((c.card_number, c) for c in cards)
        self._applied: dict[str, tuple[str, str]] = {}  # item key → (request hash, card number)
        self._batches: dict[str, str] = {}  # batch key → batch hash
        self._sequence = {kind: self._last_sequence(kind) for kind in CardKind}

    def _last_sequence(self, kind: CardKind) -> int:
        """New numbers continue after the dataset's: a card number is never given twice."""
        numbers = (c.card_number for c in self._cards.values() if c.kind is kind)
        return max((int(n.lstrip("EH")) for n in numbers), default=0)

    def card(self, number: str) -> Card | None:
        return self._cards.get(number)

    def cards_of(self, ssn: str) -> list[Card]:
        return [self._cards[n] for n in self._numbers_of.get(ssn, ())]

    def apply(
        self, batch_key: str, batch_hash: str, applications: list[CardApplication]
    ) -> list[CardApplicationResult]:
        known = self._batches.setdefault(batch_key, batch_hash)
        if known != batch_hash:
            raise _Refused("the batch key was used for another batch")
        now = dt.datetime.now(dt.UTC)
        return [self._apply_one(application, now) for application in applications]

    def _apply_one(self, application: CardApplication, now: dt.datetime) -> CardApplicationResult:
        known = self._applied.get(application.idempotency_key)
        if known is not None:
            digest, number = known
            if digest != application.request_hash:
                return _conflict("the idempotency key was used for another application")
            return CardApplicationResult(self._cards[number], created=False)
        kind = application.kind
        if any(c.kind is kind and is_live(c.status) for c in self.cards_of(application.ssn)):
            return _conflict(f"the SSN already holds a live {kind.value} card")
        card = self._new_card(application, now)
        self._applied[application.idempotency_key] = (application.request_hash, card.card_number)
        return CardApplicationResult(card, created=True)

    def _new_card(self, application: CardApplication, now: dt.datetime) -> Card:
        kind = application.kind
        self._sequence[kind] += 1
        history = birth_history(kind, now)
        card = Card(
            card_number=_number(kind, self._sequence[kind]),
            ssn=application.ssn,
            kind=kind,
            status=history[-1].status,
            issued_on=now.date() if CardStatus.ISSUED in (h.status for h in history) else None,
            region=application.region,
            channel=application.channel,
            history=history,
        )
        self._cards[card.card_number] = card
        self._numbers_of.setdefault(card.ssn, []).append(card.card_number)
        return card

    def change_status(
        self, card: Card, expected: CardStatus, to: CardStatus, reason: str | None
    ) -> Card:
        if card.status is not expected:
            raise _Refused(f"the card is {card.status.value}, not {expected.value}")
        if not allows(card.kind, card.status, to):
            raise _Refused(
                f"a {card.kind.value} card cannot go from {card.status.value} to {to.value}"
            )
        now = dt.datetime.now(dt.UTC)
        issued_on = now.date() if to is CardStatus.ISSUED else card.issued_on
        changed = dataclasses.replace(
            card, status=to, issued_on=issued_on,
            history=(*card.history, CardStatusChange(to, now, reason)),
        )
        self._cards[card.card_number] = changed
        return changed


def _number(kind: CardKind, sequence: int) -> str:
    return make_card_number(kind is CardKind.ELECTRONIC, sequence)


def _conflict(detail: str) -> CardApplicationResult:
    return CardApplicationResult(None, created=False, conflict=detail)


def _refused(exc: _Refused) -> JSONBody:
    return JSONBody({"error": "conflict", "detail": str(exc)}, status_code=409)


def _bounded(value: object) -> bool:
    return isinstance(value, str) and 0 < len(value) <= _MAX_KEY_LENGTH


def _key(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not _bounded(value):
        raise BadRequest(f"{name}: a string of 1 to {_MAX_KEY_LENGTH} characters")
    return value


def _applications(body: dict[str, Any]) -> list[CardApplication]:
    items = body.get("applications")
    if not isinstance(items, list) or not 0 < len(items) <= MAX_CARD_APPLICATIONS:
        raise BadRequest(f"applications: a list of 1 to {MAX_CARD_APPLICATIONS}")
    try:
        applications = [application_from_wire(item) for item in items]
        for application in applications:
            validate_ssn(application.ssn)
    except (WireFormatError, InvalidIdentifier) as exc:
        raise BadRequest(f"applications: {exc}") from None
    for application in applications:
        if not (_bounded(application.idempotency_key) and _bounded(application.request_hash)):
            raise BadRequest(f"applications: keys and hashes of 1 to {_MAX_KEY_LENGTH} characters")
    return applications


def _status(body: dict[str, Any], name: str) -> CardStatus:
    value = body.get(name)
    try:
        return CardStatus(value if isinstance(value, str) else "")
    except ValueError:
        raise BadRequest(f"{name}: expected a card status") from None


class _Endpoints:
    def __init__(self, store: _CardStore) -> None:
        self.store = store

    def cards(self, ssn: str) -> list[dict[str, Any]]:
        return [card_to_wire(card) for card in self.store.cards_of(ssn)]

    async def get_cards(self, request: Request) -> JSONBody:
        ssn = request.query_params.get("ssn")
        if not ssn:
            raise BadRequest("the ssn query parameter is required")
        return JSONBody({"cards": self.cards(ssn)})

    async def batch_cards(self, request: Request) -> JSONBody:
        ssns = await read_id_list(request, "ssns")
        return JSONBody({"cards": {ssn: self.cards(ssn) for ssn in ssns}})

    async def apply(self, request: Request) -> JSONBody:
        body = await read_object(request)
        batch_key, batch_hash = _key(body, "batchKey"), _key(body, "batchHash")
        applications = _applications(body)
        async with self.store.lock:
            try:
                results = self.store.apply(batch_key, batch_hash, applications)
            except _Refused as exc:
                return _refused(exc)
        return JSONBody({"results": [application_result_to_wire(r) for r in results]})

    async def get_card(self, request: Request) -> JSONBody:
        card = self.store.card(request.path_params["number"])
        return not_found() if card is None else JSONBody({"card": card_to_wire(card)})

    async def change_status(self, request: Request) -> JSONBody:
        number = request.path_params["number"]
        try:
            validate_card_number(number)
        except InvalidIdentifier:
            return not_found()
        body = await read_object(request)
        expected, to = _status(body, "from"), _status(body, "to")
        reason = body.get("reason")
        if reason is not None and not isinstance(reason, str):
            raise BadRequest("reason: a string or null")
        async with self.store.lock:
            card = self.store.card(number)
            if card is None:
                return not_found()
            try:
                changed = self.store.change_status(card, expected, to, reason)
            except _Refused as exc:
                return _refused(exc)
        return JSONBody({"card": card_to_wire(changed)})


def build_cards_app(dataset: Dataset) -> Starlette:
    """The card management system, starting from the cards of `dataset`."""
    api = _Endpoints(_CardStore(dataset))
    routes = [
        Route("/cards", api.get_cards, methods=["GET"]),
        Route("/cards:batch", api.batch_cards, methods=["POST"]),
        Route("/cards:apply", api.apply, methods=["POST"]),
        Route("/cards/{number}", api.get_card, methods=["GET"]),
        Route("/cards/{number}/status", api.change_status, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
    ]
    app = simulator_app(routes)
    app.state.dataset = dataset
    return app
