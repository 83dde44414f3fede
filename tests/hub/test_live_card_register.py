"""The register of live cards on the hub's real database (SQLite, or PostgreSQL when set):
the (person, kind) row is the rule, what a crashed writer leaves is taken over only after the
lease, and nothing but the row's own application or card releases it."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from connectors.records import Card, CardChannel, CardKind, CardStatus, LiveCardClaim
from hub.database import create_engine, migrate
from hub.live_cards import DEFAULT_LEASE, SqlLiveCardRegister

START = dt.datetime(2026, 12, 5, 12, 0, tzinfo=dt.UTC)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    await migrate(engine)
    yield engine
    await engine.dispose()


def _claim(key: str, ssn: str = "420100000000000011", person: str = "F1") -> LiveCardClaim:
    return LiveCardClaim(person, CardKind.PHYSICAL, ssn, ssn[:6], key, f"hash-{key}")


def _card(number: str, ssn: str) -> Card:
    return Card(number, ssn, CardKind.PHYSICAL, CardStatus.ACTIVE, None, ssn[:6],
                CardChannel.IN_PERSON)


async def test_one_row_per_person_and_kind_whatever_the_ssn(engine: AsyncEngine) -> None:
    register = SqlLiveCardRegister(engine)
    first, other = _claim("k1"), _claim("k2", ssn="420500000000000012")
    electronic = LiveCardClaim("F1", CardKind.ELECTRONIC, other.ssn, "420500", "k3", "h")
    assert await register.reserve([first]) == [None]
    held, free = await register.reserve([other, electronic])
    assert free is None  # another kind: its own row
    assert held is not None and (held.ssn, held.card_number, held.stale) == (
        first.ssn, None, False)
    # The same application again is told it holds the row (a retry, not a second card).
    (mine,) = await register.reserve([first])
    assert mine is not None and first.is_replay_of(mine)

    await register.confirm(first, "H00000001")
    await register.release(first)  # a confirmed row is the card's: releasing does nothing
    (still,) = await register.reserve([other])
    assert still is not None and still.card_number == "H00000001"
    await register.ended("H00000001")  # the card was cancelled: the person is free
    assert await register.reserve([other]) == [None]


async def test_concurrent_reservations_give_the_row_to_one(engine: AsyncEngine) -> None:
    register = SqlLiveCardRegister(engine)
    claims = [_claim(f"k{i}", ssn=f"42{'01' if i % 2 else '05'}00000000000{i:03d}")
              for i in range(20)]
    answers = await asyncio.gather(*(register.reserve([c]) for c in claims))
    assert sum(a == [None] for a in answers) == 1


async def test_a_dead_writers_reservation_is_taken_over_after_the_lease(
    engine: AsyncEngine,
) -> None:
    clock = Clock()
    register = SqlLiveCardRegister(engine, clock=clock)
    dead, next_one = _claim("dead"), _claim("next", ssn="420500000000000012")
    assert await register.reserve([dead]) == [None]
    (held,) = await register.reserve([next_one])
    assert held is not None and not held.stale  # the writer may still be waiting for its answer
    clock.now += DEFAULT_LEASE + dt.timedelta(seconds=1)
    (held,) = await register.reserve([next_one])
    assert held is not None and held.stale
    await register.drop(held)
    assert await register.reserve([next_one]) == [None]
    # The dead writer, back, cannot release or confirm what is no longer its row.
    await register.release(dead)
    await register.confirm(dead, "H00000009")
    current = await register.holding("F1", CardKind.PHYSICAL)
    assert current is not None and current.idempotency_key == "next"
    assert current.card_number is None


async def test_a_found_card_is_recorded_under_its_own_ssn(engine: AsyncEngine) -> None:
    register = SqlLiveCardRegister(engine)
    claim = _claim("k1")
    await register.reserve([claim])
    await register.adopt(claim, _card("H00000005", "420500000000000012"))
    found = await register.holding("F1", CardKind.PHYSICAL)
    assert found is not None
    assert (found.card_number, found.ssn, found.region) == (
        "H00000005", "420500000000000012", "420500")
    assert not claim.is_replay_of(found)  # the claim's key no longer passes as that card's
