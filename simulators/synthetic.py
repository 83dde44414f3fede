"""Deterministic synthetic data shared by the three simulated source systems and the tests.

`generate(seed, foreigners, today)` always returns the same `Dataset` for the same arguments:
all randomness comes from one `random.Random(seed)`, and the only clock read is the `today`
default. It must never touch the global `random` state, the network or the filesystem, and
must never produce an identifier whose check character does not validate.

The first foreigners follow a fixed script so that every demo sample exists for any
`foreigners >= MIN_FOREIGNERS`; the rest are drawn at random in these proportions: most
permits VALID, some EXPIRED, CANCELLED, PENDING, a few REVOKED; about 15% on the legacy
physical permit card; about a fifth of foreigners also hold an older, ended permit.

No person is enrolled twice: a holder's enrollment is that of their one current permit. One
holder enrolled at Wuhan also holds a newer VALID permit at Yichang (a second job there), never
enrolled: sample `enrolled_elsewhere_permit`, which the hub must refuse to enroll at Yichang
(one person, one live enrollment). It is made after everyone else, so it changes no one else.
"""

from __future__ import annotations

import datetime as dt
import itertools
import random
from bisect import bisect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from connectors.identifiers import REGIONS, make_credit_code, make_permit_number, make_ssn
from connectors.records import (
    Card,
    CardChannel,
    CardKind,
    CardStatus,
    CardStatusChange,
    Employer,
    Enrollment,
    EnrollmentStatus,
    Foreigner,
    Permit,
    PermitCategory,
    PermitEvent,
    PermitEventKind,
    PermitMedium,
    PermitStatus,
)
from simulators import _vocabulary as words

__all__ = ["AGENCY_REGIONS", "MIN_FOREIGNERS", "WORK_REGIONS", "Dataset", "generate"]

WUHAN, YICHANG, BEIJING = "420100", "420500", "110000"
AGENCY_REGIONS: tuple[str, ...] = (WUHAN, YICHANG)  # regions with an agency database in the demo
WORK_REGIONS: dict[str, int] = {WUHAN: 55, YICHANG: 30, BEIJING: 15}  # region → weight

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class _Weighted(Generic[_T]):
    """A weighted choice with its cumulative weights computed once (generation is a hot loop)."""

    items: tuple[_T, ...]
    cumulative: tuple[int, ...]

    @classmethod
    def of(cls, weights: dict[_T, int]) -> _Weighted[_T]:
        return cls(tuple(weights), tuple(itertools.accumulate(weights.values())))

    def pick(self, rng: random.Random) -> _T:
        return self.items[bisect(self.cumulative, rng.random() * self.cumulative[-1])]

_UTC = dt.UTC
_CREDIT_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_REGIONS = _Weighted.of(WORK_REGIONS)
_STATUSES = _Weighted.of({
    PermitStatus.VALID: 76, PermitStatus.EXPIRED: 8, PermitStatus.CANCELLED: 7,
    PermitStatus.PENDING: 6, PermitStatus.REVOKED: 3,
})
_CATEGORIES = _Weighted.of({PermitCategory.A: 15, PermitCategory.B: 65, PermitCategory.C: 20})
_NATIONALITIES = _Weighted.of({code: weight for code, (_, weight) in words.NATIONALITIES.items()})
_GENDERS = _Weighted.of({"M": 55, "F": 44, "X": 1})
_DURATIONS = _Weighted.of({365: 5, 730: 3, 1095: 2})
_PHYSICAL_CHANNELS = _Weighted.of({CardChannel.IN_PERSON: 60, CardChannel.EMPLOYER_BATCH: 40})
_LEGACY_SHARE = 0.16  # of non-pending permits; pending ones are always electronic
_PREVIOUS_PERMIT_SHARE = 0.2
_ENROLLED_SHARE = 0.6
_CARDED_SHARE = 0.85
_PHYSICAL_TARGETS = _Weighted.of({
    CardStatus.ACTIVE: 72, CardStatus.APPLIED: 3, CardStatus.IN_PRODUCTION: 5,
    CardStatus.ISSUED: 5, CardStatus.REPORTED_LOST: 4, CardStatus.SUSPENDED: 4,
    CardStatus.REPLACED: 4, CardStatus.CANCELLED: 3,
})
_ELECTRONIC_TARGETS = _Weighted.of(
    {CardStatus.ACTIVE: 85, CardStatus.SUSPENDED: 8, CardStatus.CANCELLED: 7}
)
_PHYSICAL_PATH = (
    CardStatus.APPLIED, CardStatus.IN_PRODUCTION, CardStatus.ISSUED, CardStatus.ACTIVE,
)
_REASONS = {
    CardStatus.REPORTED_LOST: "reported lost by the holder",
    CardStatus.SUSPENDED: "social insurance enrollment suspended",
    CardStatus.REPLACED: "replacement card issued",
    CardStatus.CANCELLED: "cancelled at the holder's request",
}


@dataclass(frozen=True)
class Dataset:
    """Everything the simulators serve. Keyed by the identifier each source system uses."""

    seed: int
    today: dt.date
    permits: dict[str, Permit]
    histories: dict[str, tuple[PermitEvent, ...]]
    foreigners: dict[str, Foreigner]
    permits_by_holder: dict[str, tuple[str, ...]]  # oldest permit first
    enrollments: dict[str, Enrollment]
    cards: dict[str, tuple[Card, ...]]
    samples: dict[str, str]
    # Valid, unenrolled permits at the demo agencies' regions; the first is the sample.
    unenrolled_candidates: tuple[str, ...] = ()

    def enrollments_in(self, region: str) -> list[Enrollment]:
        return [e for e in self.enrollments.values() if e.region == region]


@dataclass(frozen=True, slots=True)
class _Profile:
    """What to generate for one foreigner; None means "draw at random"."""

    status: PermitStatus | None = None
    region: str | None = None
    medium: PermitMedium | None = None
    enrolled: bool | None = None
    carded: bool | None = None
    previous: bool | None = None


# Guarantees every sample key of `_SAMPLES` below, whatever the seed.
_SCRIPT: tuple[_Profile, ...] = (
    _Profile(PermitStatus.VALID, WUHAN, PermitMedium.ELECTRONIC, True, True, True),
    _Profile(PermitStatus.VALID, YICHANG, PermitMedium.ELECTRONIC, True, True, False),
    _Profile(PermitStatus.EXPIRED, WUHAN, previous=False),
    _Profile(PermitStatus.CANCELLED, WUHAN, previous=False),
    _Profile(PermitStatus.VALID, WUHAN, PermitMedium.PHYSICAL_CARD, enrolled=True, carded=True),
    _Profile(PermitStatus.VALID, WUHAN, PermitMedium.ELECTRONIC, enrolled=False),
    _Profile(PermitStatus.PENDING, YICHANG, previous=False),
    _Profile(PermitStatus.VALID, BEIJING, PermitMedium.ELECTRONIC, previous=False),
    _Profile(PermitStatus.REVOKED, YICHANG, previous=False),
)
MIN_FOREIGNERS = len(_SCRIPT)


@dataclass
class _Builder:
    rng: random.Random
    today: dt.date
    employers: dict[str, list[Employer]] = field(default_factory=dict)
    permits: dict[str, Permit] = field(default_factory=dict)
    histories: dict[str, tuple[PermitEvent, ...]] = field(default_factory=dict)
    foreigners: dict[str, Foreigner] = field(default_factory=dict)
    permits_by_holder: dict[str, tuple[str, ...]] = field(default_factory=dict)
    enrollments: dict[str, Enrollment] = field(default_factory=dict)
    cards: dict[str, tuple[Card, ...]] = field(default_factory=dict)
    second_region_permit: str | None = None
    _passports: set[str] = field(default_factory=set)
    _sequences: dict[str, int] = field(default_factory=dict)
    _enrollment_of: dict[str, Enrollment] = field(default_factory=dict)

    # --- small random helpers -----------------------------------------------------------------

    def pick(self, weighted: _Weighted[_T]) -> _T:
        return weighted.pick(self.rng)

    def chance(self, share: float) -> bool:
        return self.rng.random() < share

    def decide(self, scripted: bool | None, share: float) -> bool:
        return scripted if scripted is not None else self.chance(share)

    def next_in(self, counter: str, start: int) -> int:
        value = self._sequences.get(counter, start) + self.rng.randint(1, 9)
        self._sequences[counter] = value
        return value

    def at(self, day: dt.date) -> dt.datetime:
        clock = dt.time(self.rng.randint(1, 9), self.rng.randrange(60))
        return dt.datetime.combine(day, clock, _UTC)

    # --- employers and people -----------------------------------------------------------------

    def make_employers(self, count: int) -> None:
        names: set[str] = set()
        for index in range(count):
            region = _REGIONS.items[index] if index < len(_REGIONS.items) else self.pick(_REGIONS)
            organisation = "".join(self.rng.choices(_CREDIT_ALPHABET, k=9))
            name = self.company_name(region, names)
            employer = Employer(make_credit_code(region, organisation), name, region)
            self.employers.setdefault(region, []).append(employer)

    def company_name(self, region: str, taken: set[str]) -> str:
        brand = self.rng.choice(words.COMPANY_BRANDS)
        sector = self.rng.choice(words.COMPANY_SECTORS)
        name = f"{REGIONS[region]} {brand} {sector} Co., Ltd."
        suffix = 2
        while name in taken:
            name = f"{REGIONS[region]} {brand} {sector} No. {suffix} Co., Ltd."
            suffix += 1
        taken.add(name)
        return name

    def make_foreigner(self, index: int) -> Foreigner:
        nationality = self.pick(_NATIONALITIES)
        group = words.NAME_GROUPS[words.NATIONALITIES[nationality][0]]
        gender = self.pick(_GENDERS)
        given = self.rng.choice(group.female if gender == "F" else group.male)
        family = self.rng.choice(group.family)
        if gender == "F":
            family += group.female_family_suffix
        age_days = self.rng.randint(22 * 365, 62 * 365)
        foreigner = Foreigner(
            id=f"FRN{index + 1:09d}",
            name=f"{given} {family}",
            nationality=nationality,
            passport_number=self.passport(),
            date_of_birth=self.today - dt.timedelta(days=age_days),
            gender=gender,
        )
        self.foreigners[foreigner.id] = foreigner
        return foreigner

    def passport(self) -> str:
        while True:
            letters = "".join(self.rng.choices("ABCDEFGHJKLMNPRSTUVWXYZ", k=2))
            number = f"{letters}{self.rng.randrange(10**7):07d}"
            if number not in self._passports:
                self._passports.add(number)
                return number

    # --- permits ------------------------------------------------------------------------------

    def make_holder(self, index: int, profile: _Profile) -> None:
        holder = self.make_foreigner(index)
        status = profile.status or self.pick(_STATUSES)
        employer = self.employer_in(profile.region or self.pick(_REGIONS))
        valid_from, valid_until, ended_on = self.current_dates(status)
        numbers: list[str] = []
        if self.decide(profile.previous, _PREVIOUS_PERMIT_SHARE):
            numbers.append(self.make_previous_permit(holder, min(valid_from, self.today)))
        medium = profile.medium or self.medium_for(status)
        dates = (valid_from, valid_until, ended_on)
        permit = self.add_permit(holder, employer, status, dates, medium)
        numbers.append(permit.number)
        self.permits_by_holder[holder.id] = tuple(numbers)
        if self.should_enroll(permit, profile):
            self.make_enrollment(permit, profile)

    def employer_in(self, region: str) -> Employer:
        return self.rng.choice(self.employers[region])

    def medium_for(self, status: PermitStatus) -> PermitMedium:
        if status is not PermitStatus.PENDING and self.chance(_LEGACY_SHARE):
            return PermitMedium.PHYSICAL_CARD
        return PermitMedium.ELECTRONIC

    def duration(self) -> int:
        return self.pick(_DURATIONS)

    def current_dates(self, status: PermitStatus) -> tuple[dt.date, dt.date, dt.date | None]:
        """(valid_from, valid_until, day it was cancelled or revoked, if it was)."""
        days = self.duration()
        if status is PermitStatus.VALID:
            start = self.today - dt.timedelta(days=self.rng.randrange(days))
        elif status is PermitStatus.EXPIRED:
            start = self.today - dt.timedelta(days=self.rng.randint(1, 720) + days - 1)
        elif status is PermitStatus.PENDING:
            start = self.today + dt.timedelta(days=self.rng.randint(7, 60))
        else:
            start = self.today - dt.timedelta(days=self.rng.randint(60, 900))
        until = start + dt.timedelta(days=days - 1)
        if status not in (PermitStatus.CANCELLED, PermitStatus.REVOKED):
            return start, until, None
        last = min(until, self.today - dt.timedelta(days=1))
        ended = start + dt.timedelta(days=self.rng.randint(30, (last - start).days))
        return start, until, ended

    def make_previous_permit(self, holder: Foreigner, before: dt.date) -> str:
        """An older permit that ended before `before`: expired, or cancelled on a change of job."""
        end = before - dt.timedelta(days=self.rng.randint(1, 60))
        days = self.duration()
        employer = self.employer_in(self.pick(_REGIONS))
        dates: tuple[dt.date, dt.date, dt.date | None]
        if self.chance(0.7):
            dates = (end - dt.timedelta(days=days - 1), end, None)
            status = PermitStatus.EXPIRED
        else:
            start = end - dt.timedelta(days=self.rng.randint(90, days))
            dates = (start, start + dt.timedelta(days=days - 1), end)
            status = PermitStatus.CANCELLED
        medium = PermitMedium.PHYSICAL_CARD if self.chance(0.35) else PermitMedium.ELECTRONIC
        return self.add_permit(holder, employer, status, dates, medium).number

    def add_permit(
        self,
        holder: Foreigner,
        employer: Employer,
        status: PermitStatus,
        dates: tuple[dt.date, dt.date, dt.date | None],
        medium: PermitMedium,
    ) -> Permit:
        valid_from, valid_until, ended_on = dates
        region = employer.region
        year = self.today.year if status is PermitStatus.PENDING else valid_from.year
        sequence = self.next_in(f"permit:{region}:{year}", self.rng.randrange(1000, 9000))
        permit = Permit(
            number=make_permit_number(region, year, sequence),
            status=status,
            valid_from=valid_from,
            valid_until=valid_until,
            medium=medium,
            holder=holder,
            employer=employer,
            category=self.pick(_CATEGORIES),
            position=self.rng.choice(words.POSITIONS),
            work_location=region,
            notification_letter_number=self.letter_number(status, medium, region, year, sequence),
        )
        self.permits[permit.number] = permit
        self.histories[permit.number] = self.history(permit, ended_on)
        return permit

    def letter_number(
        self, status: PermitStatus, medium: PermitMedium, region: str, year: int, sequence: int
    ) -> str | None:
        if status is PermitStatus.PENDING:
            return None  # the letter is issued when the application is approved
        if medium is PermitMedium.PHYSICAL_CARD and self.chance(0.4):
            return None  # older paper files were never digitised
        return f"TZ{region}{year}{sequence:07d}"

    # --- permit history -----------------------------------------------------------------------

    def history(self, permit: Permit, ended_on: dt.date | None) -> tuple[PermitEvent, ...]:
        if permit.status is PermitStatus.PENDING:
            return ()
        electronic = permit.medium is PermitMedium.ELECTRONIC
        reissued = electronic and permit.status is PermitStatus.VALID and self.chance(0.08)
        events = [self.issued_event(permit, legacy=not electronic or reissued)]
        if permit.status is PermitStatus.VALID and electronic:
            events += self.later_events(permit, reissued=reissued)
        elif permit.status is PermitStatus.EXPIRED:
            day = permit.valid_until + dt.timedelta(days=1)
            events.append(self.event(permit, PermitEventKind.EXPIRED, day, "validity period ended"))
        elif ended_on is not None:
            events.append(self.ending_event(permit, ended_on))
        return tuple(sorted(events, key=lambda e: e.at))

    def event(
        self, permit: Permit, kind: PermitEventKind, day: dt.date, detail: str | None,
        status: PermitStatus | None = None,
    ) -> PermitEvent:
        return PermitEvent(permit.number, kind, self.at(day), status or permit.status, detail)

    def issued_event(self, permit: Permit, *, legacy: bool) -> PermitEvent:
        detail = "physical work permit card issued" if legacy else "electronic work permit issued"
        day = permit.valid_from
        return self.event(permit, PermitEventKind.ISSUED, day, detail, PermitStatus.VALID)

    def later_events(self, permit: Permit, *, reissued: bool) -> list[PermitEvent]:
        span = (self.today - permit.valid_from).days
        if span < 2:
            return []
        events: list[PermitEvent] = []
        for kind, share, detail in (
            (PermitEventKind.REISSUED_ELECTRONIC, 1.0 if reissued else 0.0,
             "electronic permit reissued at the employer's request"),
            (PermitEventKind.RENEWED, 0.2, f"validity extended to {permit.valid_until}"),
            (PermitEventKind.ALTERED, 0.15, f"position changed to {permit.position}"),
        ):
            if self.chance(share):
                day = permit.valid_from + dt.timedelta(days=self.rng.randint(1, span))
                events.append(self.event(permit, kind, day, detail))
        return events

    def ending_event(self, permit: Permit, day: dt.date) -> PermitEvent:
        if permit.status is PermitStatus.REVOKED:
            reason = self.rng.choice(words.REVOCATION_REASONS)
            return self.event(permit, PermitEventKind.REVOKED, day, reason)
        reason = self.rng.choice(words.CANCELLATION_REASONS)
        return self.event(permit, PermitEventKind.CANCELLED, day, reason)

    # --- enrollments and cards ----------------------------------------------------------------

    def should_enroll(self, permit: Permit, profile: _Profile) -> bool:
        if permit.status is not PermitStatus.VALID or permit.work_location not in AGENCY_REGIONS:
            return False
        return profile.enrolled if profile.enrolled is not None else self.chance(_ENROLLED_SHARE)

    def make_enrollment(self, permit: Permit, profile: _Profile) -> None:
        region = permit.work_location
        waited = self.rng.randint(0, min(60, (self.today - permit.valid_from).days))
        active = profile.enrolled is not None or self.chance(0.92)
        enrollment = Enrollment(
            ssn=make_ssn(region, self.next_in(f"ssn:{region}", 10_000_000)),
            permit_number=permit.number,
            region=region,
            status=EnrollmentStatus.ACTIVE if active else EnrollmentStatus.SUSPENDED,
            enrolled_on=permit.valid_from + dt.timedelta(days=waited),
            name=permit.holder.name,
            nationality=permit.holder.nationality,
            employer_credit_code=permit.employer.credit_code,
        )
        self.enrollments[enrollment.ssn] = enrollment
        self._enrollment_of[permit.number] = enrollment
        if self.decide(profile.carded, _CARDED_SHARE):
            self.cards[enrollment.ssn] = self.make_cards(enrollment, full=profile.carded is True)

    def make_cards(self, enrollment: Enrollment, *, full: bool) -> tuple[Card, ...]:
        roll = 0.0 if full else self.rng.random()
        suspended = enrollment.status is EnrollmentStatus.SUSPENDED
        cards: list[Card] = []
        if roll < 0.8:
            target = CardStatus.SUSPENDED if suspended else (
                CardStatus.ACTIVE if full else self.pick(_PHYSICAL_TARGETS))
            cards += self.physical_cards(enrollment, target)
        if roll < 0.45 or roll >= 0.8:
            target = CardStatus.SUSPENDED if suspended else (
                CardStatus.ACTIVE if full else self.pick(_ELECTRONIC_TARGETS))
            cards.append(self.electronic_card(enrollment, target))
        return tuple(cards)

    def physical_cards(self, enrollment: Enrollment, target: CardStatus) -> list[Card]:
        channel = self.pick(_PHYSICAL_CHANNELS)
        start = enrollment.enrolled_on + dt.timedelta(days=self.rng.randint(1, 20))
        card = self.card(enrollment, CardKind.PHYSICAL, channel, self.walk(_path_to(target), start))
        if card.status is not CardStatus.REPLACED:
            return [card]
        restart = card.history[-1].at.date() + dt.timedelta(days=1)
        replacement = self.walk(_PHYSICAL_PATH, restart)
        return [card, self.card(enrollment, CardKind.PHYSICAL, channel, replacement)]

    def electronic_card(self, enrollment: Enrollment, target: CardStatus) -> Card:
        path = [CardStatus.APPLIED, CardStatus.ISSUED, CardStatus.ACTIVE]
        if target is not CardStatus.ACTIVE:
            path.append(target)
        start = enrollment.enrolled_on + dt.timedelta(days=self.rng.randint(0, 30))
        history = self.walk(path, start, days=False)
        return self.card(enrollment, CardKind.ELECTRONIC, CardChannel.ONLINE, history)

    def walk(
        self, path: Sequence[CardStatus], start: dt.date, *, days: bool = True
    ) -> list[CardStatusChange]:
        """Timestamped steps along `path`, stopping at today: recent cards are still in progress."""
        moment = self.at(min(start, self.today))
        changes: list[CardStatusChange] = []
        for status in path:
            if changes:
                moment += self.step(days=days)
            if changes and moment.date() > self.today:
                break
            changes.append(CardStatusChange(status, moment, _REASONS.get(status)))
        return changes

    def step(self, *, days: bool) -> dt.timedelta:
        if days:
            return dt.timedelta(days=self.rng.randint(1, 12), minutes=self.rng.randrange(240))
        return dt.timedelta(minutes=self.rng.randint(1, 30))

    def card(
        self, enrollment: Enrollment, kind: CardKind, channel: CardChannel,
        history: list[CardStatusChange],
    ) -> Card:
        if kind is CardKind.PHYSICAL:
            number = f"H{self.next_in('card:physical', 10_000_000):08d}"
        else:
            number = f"EH{self.next_in('card:electronic', 1_000_000_000):010d}"
        issued = next((c.at.date() for c in history if c.status is CardStatus.ISSUED), None)
        return Card(number, enrollment.ssn, kind, history[-1].status, issued, enrollment.region,
                    channel, tuple(history))

    def add_second_region_permit(self) -> None:
        """Give the first unscripted holder enrolled (ACTIVE) at Wuhan a newer VALID permit at
        Yichang, unenrolled; nothing if there is none (a dataset of only the script)."""
        scripted = set(list(self.foreigners)[:MIN_FOREIGNERS])
        chosen = next(
            (e for e in self.enrollments.values()
             if e.region == WUHAN and e.status is EnrollmentStatus.ACTIVE
             and self.permits[e.permit_number].holder.id not in scripted),
            None,
        )
        if chosen is None:
            return
        holder = self.permits[chosen.permit_number].holder
        start = self.today - dt.timedelta(days=self.rng.randint(0, 30))
        dates = (start, start + dt.timedelta(days=self.duration() - 1), None)
        permit = self.add_permit(
            holder, self.employer_in(YICHANG), PermitStatus.VALID, dates, PermitMedium.ELECTRONIC
        )
        self.permits_by_holder[holder.id] = (*self.permits_by_holder[holder.id], permit.number)
        self.second_region_permit = permit.number

    # --- samples ------------------------------------------------------------------------------

    def samples(self) -> dict[str, str]:
        chosen: dict[str, str] = {}
        for key, matches in _SAMPLES:
            taken = set(chosen.values())
            candidates = (p for p in self.permits.values() if p.number not in taken)
            chosen[key] = next(p.number for p in candidates if matches(self, p))
        chosen["enrolled_ssn"] = self._enrollment_of[chosen["enrolled_permit"]].ssn
        chosen["valid_permit_holder"] = self.permits[chosen["valid_permit"]].holder.id
        if self.second_region_permit is not None:
            chosen["enrolled_elsewhere_permit"] = self.second_region_permit
        chosen.update(self.card_samples())
        chosen.update(self.employer_sample())
        return chosen

    def card_samples(self) -> dict[str, str]:
        """One card number per state a card service meets most, from the Hubei agencies'
        enrollments (`card_active`, `card_in_production`, `card_reported_lost`, ...)."""
        found: dict[str, str] = {}
        for cards in self.cards.values():
            for card in cards:
                key = f"card_{card.status.value.lower()}"
                if key in _CARD_SAMPLES and key not in found and card.region in AGENCY_REGIONS:
                    found[key] = card.card_number
        return found

    def employer_sample(self) -> dict[str, str]:
        """An employer with several employees enrolled (ACTIVE) at Wuhan and holding no card
        yet, for an employer's batch card application: its credit code and, space-separated,
        up to five of their SSNs."""
        staff: dict[str, list[str]] = {}
        for enrollment in self.enrollments.values():
            if (enrollment.status is EnrollmentStatus.ACTIVE and enrollment.region == WUHAN
                    and not self.cards.get(enrollment.ssn)):
                staff.setdefault(enrollment.employer_credit_code, []).append(enrollment.ssn)
        if not staff:
            return {}
        code, ssns = max(staff.items(), key=lambda item: (len(item[1]), item[0]))
        return {
            "employer_with_employees": code,
            "employer_employee_ssns": " ".join(sorted(ssns)[:_BATCH_SAMPLE]),
        }

    def unenrolled_candidates(self, samples: dict[str, str]) -> tuple[str, ...]:
        """Valid permits at a demo agency's region with no enrollment, the sample first and no
        other sample among them: the demo names the first one its agencies have not enrolled
        since (a newcomer enrolls it, and after a restart it is enrolled)."""
        first = samples["unenrolled_valid_permit"]
        others = set(samples.values()) - {first}
        rest = (
            p.number for p in self.permits.values()
            if p.number != first and p.number not in others and _unenrolled_local(self, p)
        )
        return (first, *rest)[:_UNENROLLED_CANDIDATES]

    def enrollment_of(self, number: str) -> Enrollment | None:
        return self._enrollment_of.get(number)


def _path_to(target: CardStatus) -> tuple[CardStatus, ...]:
    """The physical card's steps from application to `target` (a replacement follows a loss)."""
    if target in _PHYSICAL_PATH:
        return _PHYSICAL_PATH[: _PHYSICAL_PATH.index(target) + 1]
    if target is CardStatus.REPLACED:
        return (*_PHYSICAL_PATH, CardStatus.REPORTED_LOST, CardStatus.REPLACED)
    return (*_PHYSICAL_PATH, target)


def _valid(b: _Builder, p: Permit) -> bool:
    return p.is_valid_on(b.today)


def _has(status: PermitStatus) -> Callable[[_Builder, Permit], bool]:
    return lambda b, p: p.status is status


def _enrolled_with_cards(b: _Builder, p: Permit) -> bool:
    enrollment = b.enrollment_of(p.number) if _valid(b, p) else None
    return enrollment is not None and bool(b.cards.get(enrollment.ssn))


def _enrolled_electronic(b: _Builder, p: Permit) -> bool:
    return p.medium is PermitMedium.ELECTRONIC and _enrolled_with_cards(b, p)


def _unenrolled_local(b: _Builder, p: Permit) -> bool:
    return _valid(b, p) and p.work_location in AGENCY_REGIONS and b.enrollment_of(p.number) is None


_CARD_SAMPLES = frozenset(
    {"card_active", "card_in_production", "card_issued", "card_reported_lost", "card_suspended"}
)
_UNENROLLED_CANDIDATES = 50
_BATCH_SAMPLE = 5

_SAMPLES: tuple[tuple[str, Callable[[_Builder, Permit], bool]], ...] = (
    ("valid_permit", _enrolled_electronic),
    ("enrolled_permit", _enrolled_with_cards),
    ("expired_permit", _has(PermitStatus.EXPIRED)),
    ("cancelled_permit", _has(PermitStatus.CANCELLED)),
    ("legacy_card_permit", lambda b, p: _valid(b, p) and p.medium is PermitMedium.PHYSICAL_CARD),
    ("unenrolled_valid_permit", _unenrolled_local),
    ("pending_permit", _has(PermitStatus.PENDING)),
    ("beijing_permit", lambda b, p: _valid(b, p) and p.work_location == BEIJING),
    ("revoked_permit", _has(PermitStatus.REVOKED)),
)


def generate(seed: int = 2025, foreigners: int = 5000, today: dt.date | None = None) -> Dataset:
    """Build the synthetic world: same (seed, foreigners, today), same Dataset."""
    if foreigners < MIN_FOREIGNERS:
        raise ValueError(f"foreigners must be at least {MIN_FOREIGNERS}, got {foreigners}")
    builder = _Builder(random.Random(seed), today or dt.date.today())
    builder.make_employers(max(12, foreigners // 20))
    for index in range(foreigners):
        builder.make_holder(index, _SCRIPT[index] if index < len(_SCRIPT) else _Profile())
    builder.add_second_region_permit()
    samples = builder.samples()
    return Dataset(
        seed=seed,
        today=builder.today,
        permits=builder.permits,
        histories=builder.histories,
        foreigners=builder.foreigners,
        permits_by_holder=builder.permits_by_holder,
        enrollments=builder.enrollments,
        cards=builder.cards,
        samples=samples,
        unenrolled_candidates=builder.unenrolled_candidates(samples),
    )
