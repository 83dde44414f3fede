"""Canonical form and hashing of one record: stable, complete, and sensitive to every field."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any, get_args

import pytest
from hypothesis import given
from hypothesis import strategies as st

from observability.audit import AuditEvent, AuditLog
from observability.audit._records import (
    GENESIS_HASH,
    Kind,
    chained,
    recomputed_hash,
    record_from_json,
    record_to_json,
)

identifiers = st.lists(st.text(min_size=1, max_size=20), max_size=5).map(tuple)
optional_text = st.none() | st.text(max_size=30)

events = st.builds(
    AuditEvent,
    time=st.datetimes(timezones=st.just(UTC), min_value=datetime(2000, 1, 1)),
    kind=st.sampled_from(get_args(Kind)),
    outcome=st.sampled_from(["OK", "PARTIAL", "DENIED", "ERROR"]),
    client_id=optional_text,
    purpose=optional_text,
    fields=identifiers,
    subjects=identifiers,
    denied=identifiers,
    error_codes=identifiers,
    embargoed_until=st.none() | st.dates(min_value=date(2000, 1, 1)),
)


@given(events)
def test_a_record_survives_its_json_form_with_the_same_hash(event: AuditEvent) -> None:
    record = chained(event, 7, "a" * 32, GENESIS_HASH)

    again = record_from_json(record_to_json(record))

    assert again == record
    assert recomputed_hash(again) == record.hash


@given(events, st.sampled_from(["client_id", "purpose", "seq", "id", "outcome", "subjects"]))
def test_changing_any_field_changes_the_hash(event: AuditEvent, name: str) -> None:
    record = chained(event, 7, "a" * 32, GENESIS_HASH)
    changed = {
        "client_id": "intruder", "purpose": "intruder", "seq": 8, "id": "b" * 32,
        "outcome": "ERROR" if record.outcome != "ERROR" else "OK", "subjects": ("intruder",),
    }[name]
    if getattr(record, name) == changed:
        return

    changes: dict[str, Any] = {name: changed}
    assert recomputed_hash(replace(record, **changes)) != record.hash


def test_list_fields_are_sets_in_the_hash() -> None:
    now = datetime.now(UTC)
    one = chained(AuditEvent(now, "graphql", "OK", subjects=("b", "a", "a")), 1, "i", GENESIS_HASH)
    two = chained(AuditEvent(now, "graphql", "OK", subjects=("a", "b")), 1, "i", GENESIS_HASH)

    assert one.hash == two.hash


def test_events_need_an_aware_time_and_known_outcome() -> None:
    with pytest.raises(ValueError, match="timezone"):
        AuditEvent(datetime(2025, 1, 1), "graphql", "OK")
    with pytest.raises(ValueError, match="outcome"):
        AuditEvent(datetime.now(UTC), "graphql", "FINE")  # type: ignore[arg-type]


async def test_an_empty_log_verifies(log: AuditLog) -> None:
    result = await log.verify()

    assert result.ok and result.checked == 0
