from __future__ import annotations

import datetime as dt
import time
from collections import Counter

import pytest

from connectors.identifiers import (
    validate_credit_code,
    validate_nationality,
    validate_permit_number,
    validate_ssn,
)
from connectors.records import CardKind, CardStatus, EnrollmentStatus, PermitMedium, PermitStatus
from simulators import AGENCY_REGIONS, Dataset, generate
from simulators.synthetic import MIN_FOREIGNERS
from tests.simulators.conftest import FOREIGNERS, SEED, TODAY

REQUIRED_SAMPLES = {
    "valid_permit", "expired_permit", "cancelled_permit", "legacy_card_permit", "enrolled_permit",
    "enrolled_ssn", "unenrolled_valid_permit", "pending_permit", "beijing_permit",
}


def test_same_seed_gives_the_same_dataset(dataset: Dataset) -> None:
    assert generate(seed=SEED, foreigners=FOREIGNERS, today=TODAY) == dataset


def test_different_seed_gives_a_different_dataset(dataset: Dataset) -> None:
    other = generate(seed=SEED + 1, foreigners=FOREIGNERS, today=TODAY)
    assert other.permits != dataset.permits
    assert other.samples != dataset.samples


def test_generation_does_not_touch_the_global_random_state(dataset: Dataset) -> None:
    import random

    random.seed(1)
    expected = random.random()
    random.seed(1)
    generate(seed=7, foreigners=50, today=TODAY)
    assert random.random() == expected


def test_five_thousand_foreigners_take_well_under_two_seconds() -> None:
    started = time.perf_counter()
    big = generate(foreigners=5000, today=TODAY)
    assert time.perf_counter() - started < 2.0
    assert len(big.foreigners) == 5000


def test_too_few_foreigners_to_hold_every_sample_is_refused() -> None:
    with pytest.raises(ValueError, match="at least"):
        generate(foreigners=MIN_FOREIGNERS - 1)
    assert set(generate(foreigners=MIN_FOREIGNERS, today=TODAY).samples) >= REQUIRED_SAMPLES


def test_samples_name_what_they_promise(dataset: Dataset) -> None:
    s, permits = dataset.samples, dataset.permits
    assert set(s) >= REQUIRED_SAMPLES
    assert permits[s["valid_permit"]].is_valid_on(TODAY)
    assert permits[s["expired_permit"]].status is PermitStatus.EXPIRED
    assert permits[s["expired_permit"]].valid_until < TODAY
    assert permits[s["cancelled_permit"]].status is PermitStatus.CANCELLED
    legacy = permits[s["legacy_card_permit"]]
    assert legacy.is_valid_on(TODAY) and legacy.medium is PermitMedium.PHYSICAL_CARD
    assert permits[s["pending_permit"]].status is PermitStatus.PENDING
    beijing = permits[s["beijing_permit"]]
    assert beijing.is_valid_on(TODAY) and beijing.work_location == "110000"


def test_enrolled_sample_has_its_enrollment_and_cards(dataset: Dataset) -> None:
    s = dataset.samples
    enrollment = dataset.enrollments[s["enrolled_ssn"]]
    assert enrollment.permit_number == s["enrolled_permit"]
    assert enrollment.status is EnrollmentStatus.ACTIVE
    assert dataset.permits[s["enrolled_permit"]].is_valid_on(TODAY)
    assert dataset.cards[s["enrolled_ssn"]]


def test_unenrolled_sample_is_valid_local_and_has_no_enrollment(dataset: Dataset) -> None:
    number = dataset.samples["unenrolled_valid_permit"]
    permit = dataset.permits[number]
    assert permit.is_valid_on(TODAY) and permit.work_location in AGENCY_REGIONS
    assert all(e.permit_number != number for e in dataset.enrollments.values())


def test_samples_are_distinct_permits(dataset: Dataset) -> None:
    permit_samples = [v for k, v in dataset.samples.items() if k.endswith("_permit")]
    assert len(permit_samples) == len(set(permit_samples))


def test_every_generated_identifier_validates(dataset: Dataset) -> None:
    for number, permit in dataset.permits.items():
        assert validate_permit_number(number) == permit.number
        assert number.startswith(permit.work_location)
        validate_credit_code(permit.employer.credit_code)
        validate_nationality(permit.holder.nationality)
    for ssn, enrollment in dataset.enrollments.items():
        assert validate_ssn(ssn).startswith(enrollment.region)


def test_identifiers_are_unique(dataset: Dataset) -> None:
    passports = [f.passport_number for f in dataset.foreigners.values()]
    assert len(passports) == len(set(passports))
    card_numbers = [c.card_number for cards in dataset.cards.values() for c in cards]
    assert len(card_numbers) == len(set(card_numbers))


def test_status_dates_agree_with_today(dataset: Dataset) -> None:
    for permit in dataset.permits.values():
        assert permit.valid_from <= permit.valid_until
        if permit.status is PermitStatus.VALID:
            assert permit.valid_from <= TODAY <= permit.valid_until
        elif permit.status is PermitStatus.EXPIRED:
            assert permit.valid_until < TODAY
        elif permit.status is PermitStatus.PENDING:
            assert permit.valid_from > TODAY


def test_the_mix_is_mostly_valid_with_some_legacy_cards(dataset: Dataset) -> None:
    permits = list(dataset.permits.values())
    statuses = Counter(p.status for p in permits)
    assert statuses[PermitStatus.VALID] > len(permits) / 2
    assert all(statuses[s] > 0 for s in PermitStatus)
    legacy = sum(p.medium is PermitMedium.PHYSICAL_CARD for p in permits) / len(permits)
    assert 0.08 < legacy < 0.25
    assert {p.work_location for p in permits} == {"420100", "420500", "110000"}
    assert any(len(numbers) > 1 for numbers in dataset.permits_by_holder.values())


def test_about_sixty_percent_of_local_valid_permits_are_enrolled(dataset: Dataset) -> None:
    local_valid = [
        p for p in dataset.permits.values()
        if p.status is PermitStatus.VALID and p.work_location in AGENCY_REGIONS
    ]
    share = len(dataset.enrollments) / len(local_valid)
    assert 0.45 < share < 0.75
    for enrollment in dataset.enrollments.values():
        permit = dataset.permits[enrollment.permit_number]
        assert enrollment.region == permit.work_location
        assert enrollment.name == permit.holder.name
        assert permit.valid_from <= enrollment.enrolled_on <= TODAY


def test_cards_have_a_plausible_history(dataset: Dataset) -> None:
    kinds = Counter(c.kind for cards in dataset.cards.values() for c in cards)
    assert kinds[CardKind.PHYSICAL] and kinds[CardKind.ELECTRONIC]
    for ssn, cards in dataset.cards.items():
        for card in cards:
            assert card.ssn == ssn and card.region == dataset.enrollments[ssn].region
            times = [change.at for change in card.history]
            assert times == sorted(times) and times[0].date() <= TODAY
            assert card.history[0].status is CardStatus.APPLIED
            assert card.history[-1].status is card.status
            issued = any(change.status is CardStatus.ISSUED for change in card.history)
            assert (card.issued_on is not None) == issued


def test_histories_are_chronological_and_end_in_the_permit_status(dataset: Dataset) -> None:
    for number, events in dataset.histories.items():
        permit = dataset.permits[number]
        if permit.status is PermitStatus.PENDING:
            assert events == ()
            continue
        assert [e.at for e in events] == sorted(e.at for e in events)
        assert events[-1].status is permit.status
        assert events[-1].at <= dt.datetime.combine(TODAY, dt.time.max, dt.UTC)


def test_no_person_is_enrolled_twice(dataset: Dataset) -> None:
    """The demo seeds no data that breaks "one person, one live enrollment"."""
    holders = Counter(
        dataset.permits[e.permit_number].holder.id
        for e in dataset.enrollments.values() if e.status is EnrollmentStatus.ACTIVE
    )
    assert holders and max(holders.values()) == 1


def test_one_holder_enrolled_at_wuhan_also_holds_a_valid_yichang_permit(dataset: Dataset) -> None:
    number = dataset.samples["enrolled_elsewhere_permit"]
    permit = dataset.permits[number]
    assert permit.is_valid_on(TODAY) and permit.work_location == "420500"
    assert all(e.permit_number != number for e in dataset.enrollments.values())
    elsewhere = [
        e for e in dataset.enrollments.values()
        if dataset.permits[e.permit_number].holder.id == permit.holder.id
    ]
    assert [(e.region, e.status) for e in elsewhere] == [("420100", EnrollmentStatus.ACTIVE)]
    assert dataset.permits_by_holder[permit.holder.id][-1] == number
