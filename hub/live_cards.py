"""The register of live cards: at most one live card of each kind per person, in the hub's
database (`hub_live_cards`, primary key (person, kind)), shared by every hub instance.

The card system knows cards by SSN only, and one person may hold SSNs in several regions; the
hub is the one party that sees them all. An application reserves its (person, kind) row
before the card system hears of it, so of two applications for the same person (two SSNs, two
hub instances) only one gets past this point; the database's key decides, not a lock held in
one process. Then the row is confirmed with the card's number, or released when no card was
made. A card leaving the live states through `updateCardStatus` frees its row.

Crash safety: a reservation whose writer died is taken over once it is older than `lease`
(the taker then looks at the holder's cards, so a card the dead writer did make is found);
a confirmed row whose card left the live states some other way is dropped by the next
application, which checks the card first (`schema.workflows.cards`).

Implements `connectors.sources.LiveCardRegister`; works on PostgreSQL and SQLite alike (one
INSERT ... ON CONFLICT DO NOTHING per batch of claims).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import and_, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from connectors.records import Card, CardKind, LiveCardClaim, LiveCardHolding
from hub.tables import live_cards

__all__ = ["DEFAULT_LEASE", "SqlLiveCardRegister"]

# Longer than any card-system write may take (its guard's deadline), so that a reservation
# taken over is one whose writer is gone, not one still waiting for its answer.
DEFAULT_LEASE = dt.timedelta(minutes=2)

_c = live_cards.c


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class SqlLiveCardRegister:
    def __init__(
        self,
        engine: AsyncEngine,
        *,
        lease: dt.timedelta = DEFAULT_LEASE,
        clock: Callable[[], dt.datetime] = _now,
    ) -> None:
        self._engine = engine
        self._lease = lease
        self._clock = clock

    async def reserve(self, claims: Sequence[LiveCardClaim]) -> list[LiveCardHolding | None]:
        if not claims:
            return []
        now = self._clock()
        # The first claim of a (person, kind) in the batch is the one that may take the row.
        first: dict[tuple[str, str], LiveCardClaim] = {}
        for claim in claims:
            first.setdefault((claim.person, claim.kind.value), claim)
        rows = [_row(claim, now) for claim in first.values()]
        async with self._engine.begin() as conn:
            insert = _insert_for(conn.dialect.name)
            statement = (
                insert(live_cards)
                .values(rows)
                .on_conflict_do_nothing(index_elements=["person_key", "kind"])
                .returning(_c.person_key, _c.kind)
            )
            taken = {(r.person_key, r.kind) for r in await conn.execute(statement)}
            held = await self._held(conn, [k for k in first if k not in taken], now)
        answers: list[LiveCardHolding | None] = []
        for claim in claims:
            key = (claim.person, claim.kind.value)
            if first[key] is not claim:  # the batch's first claim of the person holds or waits
                answers.append(held.get(key) or _holding_of(first[key], stale=False))
            elif key in taken:
                answers.append(None)
            else:  # a row was in the way; if it is gone already, the caller tries again
                answers.append(held.get(key) or _holding_of(claim, stale=True, key=""))
        return answers

    async def _held(
        self, conn: Any, keys: list[tuple[str, str]], now: dt.datetime
    ) -> dict[tuple[str, str], LiveCardHolding]:
        if not keys:
            return {}
        persons = sorted({person for person, _ in keys})
        found: dict[tuple[str, str], LiveCardHolding] = {}
        for start in range(0, len(persons), 500):
            result = await conn.execute(
                select(live_cards).where(_c.person_key.in_(persons[start : start + 500]))
            )
            for row in result:
                found[(row.person_key, row.kind)] = self._holding(row, now)
        return found

    def _holding(self, row: Any, now: dt.datetime) -> LiveCardHolding:
        reserved_at = row.reserved_at
        if reserved_at.tzinfo is None:  # SQLite gives naive datetimes back: they were UTC
            reserved_at = reserved_at.replace(tzinfo=dt.UTC)
        return LiveCardHolding(
            person=row.person_key,
            kind=CardKind(row.kind),
            ssn=row.ssn,
            region=row.region,
            card_number=row.card_number,
            idempotency_key=row.idempotency_key,
            request_hash=row.request_hash,
            stale=row.card_number is None and now - reserved_at > self._lease,
        )

    async def confirm(self, claim: LiveCardClaim, card_number: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                update(live_cards).where(_owned_by(claim)).values(card_number=card_number)
            )

    async def adopt(self, claim: LiveCardClaim, card: Card) -> None:
        # The row now stands for a card this claim did not make: a replay of the claim's key
        # must not pass as a replay of that card's application.
        async with self._engine.begin() as conn:
            await conn.execute(
                update(live_cards)
                .where(_owned_by(claim))
                .values(
                    card_number=card.card_number, ssn=card.ssn, region=card.region,
                    idempotency_key=f"found:{card.card_number}", request_hash="",
                )
            )

    async def release(self, claim: LiveCardClaim) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                delete(live_cards).where(_owned_by(claim), _c.card_number.is_(None))
            )

    async def drop(self, holding: LiveCardHolding) -> None:
        number = holding.card_number
        async with self._engine.begin() as conn:
            await conn.execute(
                delete(live_cards).where(
                    _c.person_key == holding.person,
                    _c.kind == holding.kind.value,
                    _c.idempotency_key == holding.idempotency_key,
                    _c.card_number.is_(None) if number is None else _c.card_number == number,
                )
            )

    async def ended(self, card_number: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(delete(live_cards).where(_c.card_number == card_number))

    async def holding(self, person: str, kind: CardKind) -> LiveCardHolding | None:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(live_cards).where(_c.person_key == person, _c.kind == kind.value)
                )
            ).first()
        return None if row is None else self._holding(row, self._clock())


def _row(claim: LiveCardClaim, now: dt.datetime) -> dict[str, object]:
    return {
        "person_key": claim.person,
        "kind": claim.kind.value,
        "ssn": claim.ssn,
        "region": claim.region,
        "card_number": None,
        "idempotency_key": claim.idempotency_key,
        "request_hash": claim.request_hash,
        "reserved_at": now,
    }


def _holding_of(claim: LiveCardClaim, *, stale: bool, key: str | None = None) -> LiveCardHolding:
    """What holds the row as far as this call knows: `claim` (another of the same batch), or
    with `key=""` and stale a row that was in the way and is gone (nothing to drop)."""
    return LiveCardHolding(
        person=claim.person, kind=claim.kind, ssn=claim.ssn, region=claim.region,
        card_number=None, idempotency_key=claim.idempotency_key if key is None else key,
        request_hash=claim.request_hash, stale=stale,
    )


def _owned_by(claim: LiveCardClaim) -> Any:
    return and_(
        _c.person_key == claim.person,
        _c.kind == claim.kind.value,
        _c.idempotency_key == claim.idempotency_key,
    )


def _insert_for(dialect: str) -> Any:
    """The dialect's INSERT, which has ON CONFLICT DO NOTHING (PostgreSQL and SQLite only)."""
    if dialect == "postgresql":
        return postgresql.insert
    if dialect == "sqlite":
        return sqlite.insert
    raise RuntimeError(f"the live-card register needs PostgreSQL or SQLite, not {dialect}")
