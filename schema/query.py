"""The query root. Arguments were validated before execution (`schema.arguments`).

Each root field notes the identifiers it was asked about as the request's subjects, found or
not: asking whether a person has cards is an access to that person, whatever the answer.

Each refuses a row whose identifier names a region outside the caller's jurisdiction before
loading it, when the document selects a bound field of it (`schema.rows`); for a person's
token (the e-SSC app), each row that is not the person's own, whatever is selected.
"""

from __future__ import annotations

from typing import cast

import strawberry

from infra.regions import region_of_permit, region_of_ssn
from schema.access_log import AccessEventConnection, AccessLogFilter, access_page
from schema.batching import load_all
from schema.links import prefetch
from schema.my_access_log import MyAccessLog, my_access_page
from schema.person import PermitQr, me, my_permit_qr
from schema.qr import QrVerification, check_qr
from schema.rows import (
    REFUSED,
    OutOfJurisdiction,
    refuses_identifier,
    refuses_permit,
    refuses_permits,
)
from schema.types import Ctx, Enrollment, Foreigner, SocialSecurityCard, WorkPermit


@strawberry.type
class Query:
    @strawberry.field(description="A work permit by number; null if the WMS does not know it.")
    async def permit(self, info: Ctx, number: strawberry.ID) -> WorkPermit | None:
        info.context.touched.permits.add(str(number))
        if refuses_permit(info, str(number)):
            raise OutOfJurisdiction
        return WorkPermit.maybe(await info.context.loaders.permit.load(str(number)))

    @strawberry.field(description="Up to 500 permits, in the order asked, null for unknown ones.")
    async def permits(self, info: Ctx, numbers: list[strawberry.ID]) -> list[WorkPermit | None]:
        asked = [str(n) for n in numbers]
        info.context.touched.permits.update(asked)
        refused = refuses_permits(info, asked)
        wanted = [n for n in asked if n not in refused] if refused else asked
        found = await load_all(info.context.loaders.permit, wanted)
        await prefetch(info, [p for p in found if p is not None])
        if not refused:
            return [WorkPermit.maybe(p) for p in found]
        by_number = dict(zip(wanted, found, strict=True))
        return [
            cast(WorkPermit, REFUSED) if n in refused else WorkPermit.maybe(by_number[n])
            for n in asked
        ]

    @strawberry.field(description="Check a scanned QR code: signature, expiry, permit status.")
    async def verify_permit_qr(self, info: Ctx, payload: str) -> QrVerification:
        return await check_qr(info, payload)

    @strawberry.field(description="The holder of a permit, or of an SSN's enrollment. Give one.")
    async def foreigner(
        self,
        info: Ctx,
        permit_number: strawberry.ID | None = None,
        ssn: strawberry.ID | None = None,
    ) -> Foreigner | None:
        loaders = info.context.loaders
        _named(info, permit_number, ssn)
        subject = str(permit_number if permit_number is not None else ssn)
        region = region_of_permit(subject) if permit_number is not None else region_of_ssn(subject)
        if refuses_identifier(info, subject, region):
            raise OutOfJurisdiction
        if permit_number is None and ssn is not None:
            enrollment = await loaders.enrollment.load(str(ssn))
            permit_number = strawberry.ID(enrollment.permit_number) if enrollment else None
        permit = await loaders.permit.load(str(permit_number)) if permit_number else None
        return Foreigner(_record=permit.holder) if permit else None

    @strawberry.field(description="An enrollment by SSN, at the agency of the SSN's region.")
    async def enrollment(self, info: Ctx, ssn: strawberry.ID) -> Enrollment | None:
        info.context.touched.ssns.add(str(ssn))
        if refuses_identifier(info, str(ssn), region_of_ssn(str(ssn))):
            raise OutOfJurisdiction
        return Enrollment.maybe(await info.context.loaders.enrollment.load(str(ssn)))

    # Nullable: a refused SSN (outside the caller's jurisdiction) nulls this field, not `data`.
    @strawberry.field(description="The cards issued under an SSN.")
    async def cards(self, info: Ctx, ssn: strawberry.ID) -> list[SocialSecurityCard] | None:
        info.context.touched.ssns.add(str(ssn))
        if refuses_identifier(info, str(ssn), region_of_ssn(str(ssn))):
            raise OutOfJurisdiction
        found = await info.context.loaders.cards.load(str(ssn))
        return [SocialSecurityCard.of(c) for c in found]

    @strawberry.field(description="Access records (auditors). Never the data itself.")
    async def access_log(
        self, info: Ctx, filter: AccessLogFilter | None = None, first: int = 50,
        after: str | None = None,
    ) -> AccessEventConnection:
        return await access_page(info, filter, first, after, subject_view=False)

    @strawberry.field(description="Who accessed one subject's data; embargoed clients hidden.")
    async def subject_access_log(
        self, info: Ctx, subject: strawberry.ID, first: int = 50, after: str | None = None
    ) -> AccessEventConnection:
        where = AccessLogFilter(subject=subject)
        return await access_page(info, where, first, after, subject_view=True)

    @strawberry.field(
        description="The caller's own data tracker (a person's token): agency, time, purpose."
    )
    async def my_access_log(
        self, info: Ctx, first: int = 50, after: str | None = None
    ) -> MyAccessLog:
        return await my_access_page(info, first, after)

    @strawberry.field(
        description="The caller's own holder record (a person's token); through it, their "
        "permits and enrollments."
    )
    async def me(self, info: Ctx) -> Foreigner | None:
        return await me(info)

    @strawberry.field(
        description="The QR code of the caller's current permit (a person's token), signed by "
        "the WMS; NOT_FOUND when no permit of theirs is valid today."
    )
    async def my_permit_qr(self, info: Ctx) -> PermitQr | None:
        return await my_permit_qr(info)


def _named(info: Ctx, permit_number: strawberry.ID | None, ssn: strawberry.ID | None) -> None:
    if permit_number is not None:
        info.context.touched.permits.add(str(permit_number))
    if ssn is not None:
        info.context.touched.ssns.add(str(ssn))
