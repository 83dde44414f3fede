from __future__ import annotations

import copy
from typing import Any

import pytest

from connectors.wire import (
    WireFormatError,
    card_from_wire,
    card_to_wire,
    event_from_wire,
    event_to_wire,
    foreigner_from_wire,
    foreigner_to_wire,
    permit_from_wire,
    permit_to_wire,
)
from simulators import Dataset


def test_every_record_survives_a_round_trip(dataset: Dataset) -> None:
    for permit in dataset.permits.values():
        assert permit_from_wire(permit_to_wire(permit)) == permit
    for events in dataset.histories.values():
        for event in events:
            assert event_from_wire(event_to_wire(event)) == event
    for cards in dataset.cards.values():
        for card in cards:
            assert card_from_wire(card_to_wire(card)) == card
    for foreigner in dataset.foreigners.values():
        assert foreigner_from_wire(foreigner_to_wire(foreigner)) == foreigner


def test_permit_wire_shape_uses_camel_case_and_iso_dates(dataset: Dataset) -> None:
    wire = permit_to_wire(dataset.permits[dataset.samples["valid_permit"]])
    assert set(wire) == {
        "number", "status", "validFrom", "validUntil", "medium", "holder", "employer",
        "category", "position", "workLocation", "notificationLetterNumber",
    }
    assert set(wire["holder"]) == {
        "id", "name", "nationality", "passportNumber", "dateOfBirth", "gender",
    }
    assert set(wire["employer"]) == {"creditCode", "name", "region"}
    assert len(wire["validFrom"]) == 10


def _permit_wire(dataset: Dataset) -> dict[str, Any]:
    return permit_to_wire(dataset.permits[dataset.samples["valid_permit"]])


@pytest.mark.parametrize(
    "break_it",
    [
        lambda w: w.pop("number"),
        lambda w: w.update(status="SUSPICIOUS"),
        lambda w: w.update(validFrom="yesterday"),
        lambda w: w.update(validUntil=20250101),
        lambda w: w.update(holder=None),
        lambda w: w["holder"].pop("dateOfBirth"),
        lambda w: w.update(employer=["not", "an", "object"]),
        lambda w: w.update(position=None),
        lambda w: w.update(notificationLetterNumber=12),
    ],
)
def test_malformed_permit_raises_value_error(dataset: Dataset, break_it: Any) -> None:
    wire = copy.deepcopy(_permit_wire(dataset))
    break_it(wire)
    with pytest.raises(WireFormatError):
        permit_from_wire(wire)


@pytest.mark.parametrize("junk", [None, "permit", 3, [], {}])
def test_non_objects_raise_value_error(junk: object) -> None:
    for parse in (permit_from_wire, event_from_wire, card_from_wire, foreigner_from_wire):
        with pytest.raises(ValueError):
            parse(junk)


def test_malformed_card_history_raises_value_error(dataset: Dataset) -> None:
    card = card_to_wire(dataset.cards[dataset.samples["enrolled_ssn"]][0])
    for broken in ({"history": "none"}, {"history": [{"status": "ACTIVE"}]}, {"issuedOn": 5}):
        with pytest.raises(ValueError):
            card_from_wire(card | broken)


def test_event_times_without_an_offset_are_refused(dataset: Dataset) -> None:
    event = event_to_wire(dataset.histories[dataset.samples["valid_permit"]][0])
    with pytest.raises(ValueError):
        event_from_wire(event | {"at": "2025-01-01T09:00:00"})
