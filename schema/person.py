"""A foreigner's own rows through the e-SSC app (a person's token: `self:read`, `self:subscribe`).

A person's token names the person (`HubContext.person`, their id in the WMS, which keeps one id
across permits, employers and regions). Before a request of theirs runs, `person_guard` reads
their identifiers once: the permits the WMS lists for them and the SSNs of those permits'
enrollments. The request's `RowGuard` holds them (person mode, `schema.rows`), so every row the
request reaches is covered when it is theirs and refused, exactly as an out-of-jurisdiction
row is, when it is not. The field registry says which fields their scopes open at all
(`schema.fields`, `Field.person`).

Two root fields serve them alone: `me`, their holder record (from their permits; its
`permits` and `enrollments` list their rows), and `myPermitQr`, the QR code of their current
permit as the WMS signs it (`verifyPermitQr` checks it like any other).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

import strawberry

from connectors.records import Permit
from infra.regions import region_of_permit
from schema.errors import Forbidden, NotFound
from schema.loaders import Sources
from schema.rows import RowGuard
from schema.types import Ctx, Foreigner
from schema.workflows.qr import expiry_of

__all__ = ["PermitQr", "me", "my_permit_qr", "person_guard", "person_of"]


async def person_guard(sources: Sources, person: str) -> RowGuard:
    """The person's rows (person mode): their permits in the WMS and those permits'
    enrollment SSNs at the agencies. A source system's failure is raised: a person is never
    refused their own rows for want of an answer."""
    permits = (await sources.permits.permits_of_holders([person])).get(person, ())
    by_region: dict[str, list[str]] = defaultdict(list)
    for number in permits:
        by_region[region_of_permit(number)].append(number)
    ssns: list[str] = []
    for region, numbers in sorted(by_region.items()):
        if region in sources.enrollments.regions():
            found = await sources.enrollments.by_permits(region, numbers)
            ssns.extend(e.ssn for e in found.values())
    return RowGuard.of_person(person, permits, ssns)


def person_of(info: Ctx, field: str) -> RowGuard:
    """The person's guard; Forbidden for a token that names no person (only a person's token
    holds `self:read`: anyone else asks for no one)."""
    guard = info.context.rows
    if info.context.person is None or guard is None or guard.person is None:
        raise Forbidden(f"{field} answers a person's own token only")
    return guard


async def _own_permits(info: Ctx, guard: RowGuard) -> list[Permit]:
    found = await info.context.loaders.permit.load_many(list(guard.own_permits))
    return [p for p in found if p is not None and p.holder.id == guard.person]


async def me(info: Ctx) -> Foreigner | None:
    guard = person_of(info, "me")
    permits = await _own_permits(info, guard)
    if not permits:
        return None
    return Foreigner(_record=max(permits, key=lambda p: p.valid_until).holder)


@strawberry.type(description="The QR code of the caller's current permit, signed by the WMS.")
class PermitQr:
    payload: str = strawberry.field(description="The compact JWS the QR code carries.")
    permit_number: strawberry.ID
    expires_at: dt.datetime | None = strawberry.field(
        description="When the code stops scanning (ask for a new one then)."
    )


async def my_permit_qr(info: Ctx) -> PermitQr | None:
    """The code of the permit valid today (of several, the one valid longest); NOT_FOUND
    when the person holds none."""
    guard = person_of(info, "myPermitQr")
    today = info.context.today
    current = [p for p in await _own_permits(info, guard) if p.is_valid_on(today)]
    if not current:
        raise NotFound("you hold no permit valid today: there is no QR code to show")
    permit = max(current, key=lambda p: (p.valid_until, p.number))
    info.context.touched.permits.add(permit.number)
    payload = await info.context.sources.permits.qr(permit.number)
    if payload is None:  # the WMS lost it since it listed it
        raise NotFound("the WMS has no QR code for your current permit now; try again later")
    return PermitQr(
        payload=payload, permit_number=strawberry.ID(permit.number),
        expires_at=expiry_of(payload),
    )
