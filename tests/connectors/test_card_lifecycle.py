"""The card lifecycle table is well formed and agrees with every synthetic card's history."""

from __future__ import annotations

import datetime as dt
from collections import deque

import pytest

from connectors.card_lifecycle import (
    BIRTH,
    TERMINAL,
    TRANSITIONS,
    allows,
    birth_history,
    is_live,
    is_valid_history,
)
from connectors.records import CardKind, CardStatus
from simulators import generate

S = CardStatus


@pytest.mark.parametrize(
    ("seed", "today"), [(2025, dt.date(2025, 6, 1)), (7, dt.date(2026, 1, 15))]
)
def test_every_synthetic_card_history_follows_the_lifecycle(seed: int, today: dt.date) -> None:
    dataset = generate(seed=seed, foreigners=1500, today=today)
    cards = [card for cards in dataset.cards.values() for card in cards]
    assert {c.kind for c in cards} == set(CardKind)
    for card in cards:
        statuses = [h.status for h in card.history]
        assert is_valid_history(card.kind, statuses), (card.card_number, statuses)
        assert statuses[-1] is card.status


def test_every_synthetic_holder_has_at_most_one_live_card_of_each_kind() -> None:
    dataset = generate(seed=2025, foreigners=1500, today=dt.date(2025, 6, 1))
    for ssn, cards in dataset.cards.items():
        live = [c.kind for c in cards if is_live(c.status)]
        assert len(live) == len(set(live)), ssn


@pytest.mark.parametrize("kind", list(CardKind))
def test_every_status_of_a_kind_is_reachable_from_its_birth(kind: CardKind) -> None:
    seen = {BIRTH[kind][-1]}
    queue = deque(seen)
    while queue:
        for following in TRANSITIONS[kind][queue.popleft()]:
            if following not in seen:
                seen.add(following)
                queue.append(following)
    assert seen == set(TRANSITIONS[kind])


def test_terminal_statuses_have_no_way_out_and_nothing_loops_on_itself() -> None:
    for kind, table in TRANSITIONS.items():
        for status, following in table.items():
            assert status not in following
            assert (not following) == (status in TERMINAL), (kind, status)


def test_the_table_of_the_design() -> None:
    physical = CardKind.PHYSICAL
    assert allows(physical, S.REPORTED_LOST, S.ACTIVE)  # found again
    assert allows(physical, S.REPORTED_LOST, S.REPLACED)
    assert not allows(physical, S.APPLIED, S.ACTIVE)  # no skipping production
    assert not allows(physical, S.SUSPENDED, S.REPORTED_LOST)
    assert not allows(physical, S.REPLACED, S.ACTIVE)
    electronic = CardKind.ELECTRONIC
    assert allows(electronic, S.ACTIVE, S.SUSPENDED) and allows(electronic, S.SUSPENDED, S.ACTIVE)
    assert not allows(electronic, S.ACTIVE, S.REPORTED_LOST)  # nothing to lose
    assert not allows(electronic, S.APPLIED, S.ISSUED)  # born ACTIVE, never in between


def test_an_electronic_card_is_born_active_in_one_moment() -> None:
    at = dt.datetime(2025, 6, 1, 9, tzinfo=dt.UTC)
    history = birth_history(CardKind.ELECTRONIC, at)
    assert [h.status for h in history] == [S.APPLIED, S.ISSUED, S.ACTIVE]
    assert {h.at for h in history} == {at}
    assert [h.status for h in birth_history(CardKind.PHYSICAL, at)] == [S.APPLIED]


@pytest.mark.parametrize(
    ("kind", "statuses"),
    [
        (CardKind.PHYSICAL, []),
        (CardKind.PHYSICAL, [S.IN_PRODUCTION]),
        (CardKind.PHYSICAL, [S.APPLIED, S.ISSUED]),
        (CardKind.PHYSICAL, [S.APPLIED, S.CANCELLED, S.APPLIED]),
        (CardKind.ELECTRONIC, [S.APPLIED, S.ISSUED]),
        (CardKind.ELECTRONIC, [S.ACTIVE]),
    ],
)
def test_histories_that_skip_or_leave_a_terminal_status_are_refused(
    kind: CardKind, statuses: list[CardStatus]
) -> None:
    assert not is_valid_history(kind, statuses)
