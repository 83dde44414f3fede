"""The foreigner's own data tracker: `myAccessLog` (scope `self:read`, a person's token only).

Which agency looked at this person's data, when, and for what purpose: the records that name any
of the person's identifiers (the permits the WMS lists for them, and the enrollment SSNs of
those permits at their agencies, read once per request: `schema.person`), with records of
embargoed clients hidden until their embargo date, as in `subjectAccessLog`. Nothing else of a
record is shown: not the client, the officer or the case, nor the other identifiers a record
names (a batch names other people too).
"""

from __future__ import annotations

import datetime as dt

import strawberry

from observability.audit import AuditFilter, AuditQueryError
from schema.errors import BadUserInput
from schema.person import person_of
from schema.types import Ctx

__all__ = ["MyAccess", "MyAccessLog", "my_access_page"]


@strawberry.type(description="One access to the person's data: who (agency), when, why.")
class MyAccess:
    time: dt.datetime
    agency: str | None
    purpose: str | None


@strawberry.type
class MyAccessLog:
    entries: list[MyAccess]
    end_cursor: str | None
    has_next_page: bool


async def my_access_page(info: Ctx, first: int, after: str | None) -> MyAccessLog:
    guard = person_of(info, "myAccessLog")
    audit = info.context.audit
    assert audit is not None, "the hub wires the audit log into every request context"
    identifiers = tuple(sorted(guard.own))
    info.context.touched.subjects_read.update(identifiers)
    if not identifiers:
        return MyAccessLog(entries=[], end_cursor=None, has_next_page=False)
    try:
        page = await audit.search(
            AuditFilter(any_subject=identifiers), first, after, subject_view=True,
            today=info.context.today,
        )
    except AuditQueryError as exc:
        raise BadUserInput(str(exc)) from None
    entries = [MyAccess(time=r.time, agency=r.agency, purpose=r.purpose) for r in page.records]
    return MyAccessLog(entries=entries, end_cursor=page.end_cursor,
                       has_next_page=page.has_next_page)
