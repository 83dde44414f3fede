"""The foreigner's own data tracker: `myAccessLog` (scope `self:read`, a person's token only).

Which agency looked at this person's data, when, and for what purpose: the records that name any
of the person's identifiers (the permits the WMS lists for them, and the enrollment SSNs of
those permits at their agencies), with records of embargoed clients hidden until their embargo
date, as in `subjectAccessLog`. Nothing else of a record is shown: not the client, the officer
or the case, nor the other identifiers a record names (a batch names other people too).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

import strawberry

from infra.regions import region_of_permit
from observability.audit import AuditFilter, AuditQueryError
from schema.errors import BadUserInput, Forbidden
from schema.types import Ctx

__all__ = ["MyAccess", "MyAccessLog", "my_access_page", "person_identifiers"]


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


async def person_identifiers(info: Ctx, person: str) -> tuple[str, ...]:
    """The person's permit numbers (from the WMS) and the SSNs of their enrollments."""
    sources = info.context.sources
    permits = (await sources.permits.permits_of_holders([person])).get(person, ())
    by_region: dict[str, list[str]] = defaultdict(list)
    for number in permits:
        by_region[region_of_permit(number)].append(number)
    ssns: list[str] = []
    for region, numbers in sorted(by_region.items()):
        if region in sources.enrollments.regions():
            found = await sources.enrollments.by_permits(region, numbers)
            ssns.extend(e.ssn for e in found.values())
    return tuple(sorted({*permits, *ssns}))


async def my_access_page(info: Ctx, first: int, after: str | None) -> MyAccessLog:
    person = info.context.person
    if person is None:  # only a person's token holds `self:read`; anyone else asks for no one
        raise Forbidden("myAccessLog answers a person's own token only")
    audit = info.context.audit
    assert audit is not None, "the hub wires the audit log into every request context"
    identifiers = await person_identifiers(info, person)
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
