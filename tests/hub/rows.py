"""Rows inside and outside a jurisdiction, from the synthetic data, for the row-binding tests.

An "enrolled row" is a VALID permit with an enrollment that has cards: every bound field can be
read on it (the permit, its holder, its enrollment, its cards).
"""

from __future__ import annotations

from dataclasses import dataclass

from infra.regions import covers
from simulators import Dataset

__all__ = ["EnrolledRow", "enrolled_row"]


@dataclass(frozen=True, slots=True)
class EnrolledRow:
    permit: str
    ssn: str
    holder: str  # the WMS id of the holder


def enrolled_row(
    dataset: Dataset, jurisdiction: tuple[str, ...], *, inside: bool
) -> EnrolledRow | None:
    """The first enrolled row inside (or outside) `jurisdiction`; None if there is none (a
    national jurisdiction has no outside, Hubei's none among the demo's agencies)."""
    for enrollment in sorted(dataset.enrollments.values(), key=lambda e: e.ssn):
        permit = dataset.permits[enrollment.permit_number]
        if not permit.is_valid_on(dataset.today) or not dataset.cards.get(enrollment.ssn):
            continue
        if covers(jurisdiction, enrollment.region) == inside:
            return EnrolledRow(permit.number, enrollment.ssn, permit.holder.id)
    return None
