"""The query root. Arguments were validated before execution (`schema.arguments`).

Each root field notes the identifiers it was asked about as the request's subjects, found or
not: asking whether a person has cards is an access to that person, whatever the answer.
"""

from __future__ import annotations

import strawberry

from schema.access_log import AccessEventConnection, AccessLogFilter, access_page
from schema.batching import load_all
from schema.links import prefetch
from schema.qr import QrVerification, check_qr
from schema.types import Ctx, Enrollment, Foreigner, SocialSecurityCard, WorkPermit


@strawberry.type
class Query:
    @strawberry.field(description="A work permit by number; null if the WMS does not know it.")
    async def permit(self, info: Ctx, number: strawberry.ID) -> WorkPermit | None:
        info.context.touched.permits.add(str(number))
        return WorkPermit.maybe(await info.context.loaders.permit.load(str(number)))

    @strawberry.field(description="Up to 500 permits, in the order asked, null for unknown ones.")
    async def permits(self, info: Ctx, numbers: list[strawberry.ID]) -> list[WorkPermit | None]:
        info.context.touched.permits.update(str(n) for n in numbers)
        found = await load_all(info.context.loaders.permit, [str(n) for n in numbers])
        await prefetch(info, [p for p in found if p is not None])
        return [WorkPermit.maybe(p) for p in found]

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
        if permit_number is None and ssn is not None:
            enrollment = await loaders.enrollment.load(str(ssn))
            permit_number = strawberry.ID(enrollment.permit_number) if enrollment else None
        permit = await loaders.permit.load(str(permit_number)) if permit_number else None
        return Foreigner(_record=permit.holder) if permit else None

    @strawberry.field(description="An enrollment by SSN, at the agency of the SSN's region.")
    async def enrollment(self, info: Ctx, ssn: strawberry.ID) -> Enrollment | None:
        info.context.touched.ssns.add(str(ssn))
        return Enrollment.maybe(await info.context.loaders.enrollment.load(str(ssn)))

    @strawberry.field(description="The cards issued under an SSN.")
    async def cards(self, info: Ctx, ssn: strawberry.ID) -> list[SocialSecurityCard]:
        info.context.touched.ssns.add(str(ssn))
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


def _named(info: Ctx, permit_number: strawberry.ID | None, ssn: strawberry.ID | None) -> None:
    if permit_number is not None:
        info.context.touched.permits.add(str(permit_number))
    if ssn is not None:
        info.context.touched.ssns.add(str(ssn))
