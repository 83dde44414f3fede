"""The auditors' accessLog and the data tracker: filters, pagination, embargoes."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from observability.audit import AuditFilter, AuditLog, AuditQueryError
from tests.observability.conftest import PERMITS, T0, event, today


async def _fill(log: AuditLog, count: int) -> None:
    for i in range(count):
        await log.append(event(i, client_id=f"client-{i % 2}",
                               outcome="DENIED" if i % 5 == 0 else "OK"))


async def test_pages_go_newest_first_without_gaps_or_repeats(log: AuditLog) -> None:
    await _fill(log, 25)
    seen: list[int] = []
    after = None
    while True:
        page = await log.search(AuditFilter(), 10, after, subject_view=False, today=today())
        seen += [r.seq for r in page.records]
        if not page.has_next_page:
            break
        after = page.end_cursor

    assert seen == list(range(25, 0, -1))


async def test_filters_combine(log: AuditLog) -> None:
    await _fill(log, 30)
    where = AuditFilter(client_id="client-0", outcome="DENIED")

    page = await log.search(where, 50, subject_view=False, today=today())

    assert [r.seq for r in page.records] == [21, 11, 1]


async def test_filter_by_subject_answers_who_looked_at_this_person(log: AuditLog) -> None:
    await _fill(log, 9)

    page = await log.search(AuditFilter(subject=PERMITS[1]), 50, subject_view=True, today=today())

    assert [r.seq for r in page.records] == [8, 5, 2]
    assert all(PERMITS[1] in r.subjects for r in page.records)


async def test_filter_by_time_and_trace(log: AuditLog) -> None:
    await _fill(log, 10)
    window = AuditFilter(time_from=T0 + timedelta(seconds=3), time_to=T0 + timedelta(seconds=5))

    timed = await log.search(window, 50, subject_view=False, today=today())
    traced = await log.search(AuditFilter(trace_id=f"{7:032x}"), 50, subject_view=False,
                              today=today())

    assert [r.seq for r in timed.records] == [5, 4]
    assert [r.seq for r in traced.records] == [8]


async def test_embargoed_access_is_hidden_from_the_subject_until_the_date(log: AuditLog) -> None:
    until = date(2025, 6, 1)
    await log.append(event(1, client_id="exit-entry-wuhan", embargoed_until=until))
    await log.append(event(4, client_id="si-agency-wuhan"))
    mine = AuditFilter(subject=PERMITS[1])

    during = await log.search(mine, 50, subject_view=True, today=today())
    auditor = await log.search(mine, 50, subject_view=False, today=today())
    later = await log.search(mine, 50, subject_view=True, today=until)

    assert [r.client_id for r in during.records] == ["si-agency-wuhan"]
    assert len(auditor.records) == 2
    assert len(later.records) == 2


@pytest.mark.parametrize("cursor", ["nonsense!", "djI6MTA", ""])
async def test_a_bad_cursor_is_a_query_error(log: AuditLog, cursor: str) -> None:
    with pytest.raises(AuditQueryError):
        await log.search(AuditFilter(), 10, cursor, subject_view=False, today=today())


async def test_page_size_is_bounded(log: AuditLog) -> None:
    with pytest.raises(AuditQueryError):
        await log.search(AuditFilter(), 501, subject_view=False, today=today())
