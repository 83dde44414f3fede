"""The card lifecycle: which status a social security card may move to from the one it has.

One table, shared by the simulated card system (which enforces it on every write) and by the
hub's workflow (which refuses an illegal move before it calls the card system at all):

    PHYSICAL
      APPLIED        -> IN_PRODUCTION | CANCELLED
      IN_PRODUCTION  -> ISSUED | CANCELLED
      ISSUED         -> ACTIVE | CANCELLED
      ACTIVE         -> REPORTED_LOST | SUSPENDED | CANCELLED
      REPORTED_LOST  -> ACTIVE (found) | REPLACED | CANCELLED
      SUSPENDED      -> ACTIVE | CANCELLED
      REPLACED, CANCELLED: terminal
    ELECTRONIC
      ACTIVE         -> SUSPENDED | CANCELLED
      SUSPENDED      -> ACTIVE | CANCELLED
      CANCELLED: terminal

A card is born with `BIRTH[kind]` as its history: a physical card at APPLIED (it still has to
be produced and handed over); an electronic card at ACTIVE, its APPLIED, ISSUED and ACTIVE
steps recorded at the same moment, because the hub verified the holder's identity before it
asked for the card. A REPLACED card is not reissued in place: the replacement is a new
application, allowed because a REPLACED or CANCELLED card is no longer *live*.

Pure data and functions: no I/O, no GraphQL.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterable, Mapping

from connectors.records import CardKind, CardStatus, CardStatusChange

__all__ = [
    "BIRTH",
    "TERMINAL",
    "TRANSITIONS",
    "allows",
    "birth_history",
    "is_live",
    "is_valid_history",
]

_S = CardStatus

TRANSITIONS: Mapping[CardKind, Mapping[CardStatus, frozenset[CardStatus]]] = {
    CardKind.PHYSICAL: {
        _S.APPLIED: frozenset({_S.IN_PRODUCTION, _S.CANCELLED}),
        _S.IN_PRODUCTION: frozenset({_S.ISSUED, _S.CANCELLED}),
        _S.ISSUED: frozenset({_S.ACTIVE, _S.CANCELLED}),
        _S.ACTIVE: frozenset({_S.REPORTED_LOST, _S.SUSPENDED, _S.CANCELLED}),
        _S.REPORTED_LOST: frozenset({_S.ACTIVE, _S.REPLACED, _S.CANCELLED}),
        _S.SUSPENDED: frozenset({_S.ACTIVE, _S.CANCELLED}),
        _S.REPLACED: frozenset(),
        _S.CANCELLED: frozenset(),
    },
    CardKind.ELECTRONIC: {
        _S.ACTIVE: frozenset({_S.SUSPENDED, _S.CANCELLED}),
        _S.SUSPENDED: frozenset({_S.ACTIVE, _S.CANCELLED}),
        _S.CANCELLED: frozenset(),
    },
}

# The statuses a new card's history starts with, the last one being its status.
BIRTH: Mapping[CardKind, tuple[CardStatus, ...]] = {
    CardKind.PHYSICAL: (_S.APPLIED,),
    CardKind.ELECTRONIC: (_S.APPLIED, _S.ISSUED, _S.ACTIVE),
}

TERMINAL = frozenset({_S.REPLACED, _S.CANCELLED})


def allows(kind: CardKind, current: CardStatus, to: CardStatus) -> bool:
    """True if a card of `kind` may move from `current` to `to` (never to itself)."""
    return to in TRANSITIONS[kind].get(current, frozenset())


def is_live(status: CardStatus) -> bool:
    """A live card is one the holder still has or will get; one per kind per SSN."""
    return status not in TERMINAL


def birth_history(kind: CardKind, at: dt.datetime) -> tuple[CardStatusChange, ...]:
    """The history of a card of `kind` created at `at`."""
    return tuple(CardStatusChange(status, at) for status in BIRTH[kind])


def is_valid_history(kind: CardKind, statuses: Iterable[CardStatus]) -> bool:
    """The card was born as `BIRTH[kind]` says and every later step was allowed."""
    steps = list(statuses)
    birth = list(BIRTH[kind])
    if steps[: len(birth)] != birth:
        return False
    later = steps[len(birth) - 1 :]
    return all(allows(kind, a, b) for a, b in itertools.pairwise(later))
