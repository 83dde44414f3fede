"""GraphQL object types over the connectors' records. Resolvers are a few lines: load, wrap.

Type and field names are the agencies' contract (`hub schema export` prints it): renaming one
breaks their queries. Every field is listed in `schema.policy`.

A field served by another source system than its parent (a permit's cards, enrollment and
history, a foreigner's permits and enrollments) is nullable: when that system fails, the field
is null with an UPSTREAM_* error at its path and the rest of the answer stands (non-null would
null the parent instead). Root fields keep the contract's types as agencies know them.

A row outside the caller's jurisdiction is refused the same way, null at its path
(`schema.rows`); for that, `Query.cards` and the items of a foreigner's `permits` and
`enrollments` are nullable (README, "Jurisdiction").
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Annotated

import strawberry
from graphql.pyutils import AwaitableOrValue
from strawberry import Info

from connectors import records
from connectors.identifiers import REGIONS
from infra.regions import region_of_ssn
from schema.batching import then
from schema.context import HubContext
from schema.links import cards_of, cards_of_ssn, enrollment_of
from schema.rows import OutOfJurisdiction, refuses_agency, refuses_identifier, refuses_permit

PermitStatus = strawberry.enum(records.PermitStatus, name="PermitStatus")
PermitMedium = strawberry.enum(records.PermitMedium, name="PermitMedium")
PermitCategory = strawberry.enum(records.PermitCategory, name="PermitCategory")
PermitEventKind = strawberry.enum(records.PermitEventKind, name="PermitEventKind")
EnrollmentStatus = strawberry.enum(records.EnrollmentStatus, name="EnrollmentStatus")
CardKind = strawberry.enum(records.CardKind, name="CardKind")
CardStatus = strawberry.enum(records.CardStatus, name="CardStatus")
CardChannel = strawberry.enum(records.CardChannel, name="CardChannel")

Ctx = Info[HubContext, None]


@strawberry.type(description="A GB/T 2260 administrative region.")
class Region:
    code: strawberry.ID
    name: str | None

    @classmethod
    def of(cls, code: str) -> Region:
        return cls(code=strawberry.ID(code), name=REGIONS.get(code))


@strawberry.type
class Employer:
    credit_code: strawberry.ID = strawberry.field(description="Unified social credit code.")
    name: str
    region: Region

    @classmethod
    def of(cls, record: records.Employer) -> Employer:
        return cls(
            credit_code=strawberry.ID(record.credit_code),
            name=record.name,
            region=Region.of(record.region),
        )


@strawberry.type
class PermitEvent:
    permit_number: strawberry.ID
    kind: PermitEventKind  # type: ignore[valid-type]
    at: dt.datetime
    status: PermitStatus  # type: ignore[valid-type]
    detail: str | None

    @classmethod
    def of(cls, record: records.PermitEvent) -> PermitEvent:
        return cls(
            permit_number=strawberry.ID(record.permit_number),
            kind=record.kind,
            at=record.at,
            status=record.status,
            detail=record.detail,
        )


@strawberry.type
class CardStatusChange:
    status: CardStatus  # type: ignore[valid-type]
    at: dt.datetime
    reason: str | None


@strawberry.type(name="SocialSecurityCard")
class SocialSecurityCard:
    _record: strawberry.Private[records.Card]
    # Copied from the record, as `WorkPermit`'s leading fields are (see there): the fields
    # before the first resolver, in the contract's order.
    card_number: strawberry.ID
    ssn: strawberry.ID
    kind: CardKind  # type: ignore[valid-type]
    status: CardStatus  # type: ignore[valid-type]
    issued_on: dt.date | None

    @strawberry.field
    def region(self) -> Region:
        return Region.of(self._record.region)

    @strawberry.field
    def channel(self) -> CardChannel:  # type: ignore[valid-type]
        return self._record.channel

    @strawberry.field
    def history(self) -> list[CardStatusChange]:
        return [
            CardStatusChange(status=h.status, at=h.at, reason=h.reason)
            for h in self._record.history
        ]

    @classmethod
    def of(cls, record: records.Card) -> SocialSecurityCard:
        return cls(
            _record=record,
            card_number=strawberry.ID(record.card_number),
            ssn=strawberry.ID(record.ssn),
            kind=record.kind,
            status=record.status,
            issued_on=record.issued_on,
        )

    @classmethod
    def all_of(cls, cards: Iterable[records.Card]) -> list[SocialSecurityCard]:
        return [cls.of(c) for c in cards]


@strawberry.federation.type(keys=["ssn"])
class Enrollment:
    _record: strawberry.Private[records.Enrollment]
    # Copied from the record, as `WorkPermit`'s leading fields are (see there).
    ssn: strawberry.ID
    permit_number: strawberry.ID

    @strawberry.field
    def region(self) -> Region:
        return Region.of(self._record.region)

    @strawberry.field
    def status(self) -> EnrollmentStatus:  # type: ignore[valid-type]
        return self._record.status

    @strawberry.field
    def enrolled_on(self) -> dt.date:
        return self._record.enrolled_on

    @strawberry.field
    def employer_credit_code(self) -> strawberry.ID:
        return strawberry.ID(self._record.employer_credit_code)

    @strawberry.field
    async def permit(
        self, info: Ctx
    ) -> Annotated[WorkPermit, strawberry.lazy("schema.types")] | None:
        # The enrollment was checked; its permit may be of another region (`schema.rows`).
        if refuses_permit(info, self._record.permit_number):
            info.context.touched.permits.add(self._record.permit_number)
            raise OutOfJurisdiction
        return WorkPermit.maybe(await info.context.loaders.permit.load(self._record.permit_number))

    @strawberry.field(graphql_type=list[SocialSecurityCard] | None)
    def cards(self, info: Ctx) -> AwaitableOrValue[list[SocialSecurityCard]]:
        return then(cards_of_ssn(info.context.loaders, self._record.ssn), SocialSecurityCard.all_of)

    @classmethod
    def of(cls, record: records.Enrollment) -> Enrollment:
        return cls(
            _record=record,
            ssn=strawberry.ID(record.ssn),
            permit_number=strawberry.ID(record.permit_number),
        )

    @classmethod
    def maybe(cls, record: records.Enrollment | None) -> Enrollment | None:
        return None if record is None else cls.of(record)

    @classmethod
    async def resolve_reference(cls, info: Ctx, ssn: str) -> Enrollment | None:
        """`_entities` (`schema.entities`): as `Query.enrollment`, refused before the load."""
        info.context.touched.ssns.add(ssn)
        if refuses_identifier(info, ssn, region_of_ssn(ssn)):
            raise OutOfJurisdiction
        return cls.maybe(await info.context.loaders.enrollment.load(ssn))


@strawberry.type
class Foreigner:
    _record: strawberry.Private[records.Foreigner]

    @strawberry.field(description="The Work Management System's id of the person.")
    def id(self) -> strawberry.ID:
        return strawberry.ID(self._record.id)

    @strawberry.field
    def name(self) -> str:
        return self._record.name

    @strawberry.field(description="ISO 3166-1 alpha-3.")
    def nationality(self) -> str:
        return self._record.nationality

    @strawberry.field
    def passport_number(self) -> str:
        return self._record.passport_number

    @strawberry.field
    def date_of_birth(self) -> dt.date:
        return self._record.date_of_birth

    @strawberry.field
    def gender(self) -> str:
        return self._record.gender

    # Items nullable: a permit of this person outside the caller's jurisdiction is refused
    # alone (`schema.rows`), not the whole list.
    @strawberry.field
    async def permits(
        self, info: Ctx
    ) -> list[Annotated[WorkPermit, strawberry.lazy("schema.types")] | None] | None:
        return [WorkPermit.of(p) for p in await _permits_of_holder(info, self._record.id)]

    @strawberry.field  # items nullable, as `permits`'
    async def enrollments(self, info: Ctx) -> list[Enrollment | None] | None:
        permits = await _permits_of_holder(info, self._record.id)
        found = await info.context.loaders.enrollment_of_permit.load_many(
            [(p.work_location, p.number) for p in permits]
        )
        return [Enrollment.of(e) for e in found if e is not None]


async def _permits_of_holder(info: Ctx, holder_id: str) -> list[records.Permit]:
    numbers = await info.context.loaders.permits_of_holder.load(holder_id)
    found = await info.context.loaders.permit.load_many(list(numbers))
    return [p for p in found if p is not None]


@strawberry.federation.type(keys=["number"])
class WorkPermit:
    _record: strawberry.Private[records.Permit]
    # Copied from the record: strawberry reads an attribute without calling a resolver, a
    # saving every item of a page of 500 permits makes. Only the leading fields: strawberry
    # lists resolver methods after attributes, and the contract's order puts isValid fifth.
    number: strawberry.ID
    status: PermitStatus  # type: ignore[valid-type]
    valid_from: dt.date
    valid_until: dt.date

    @strawberry.field(description="VALID and within its dates on `on` (default: today).")
    def is_valid(self, info: Ctx, on: dt.date | None = None) -> bool:
        return self._record.is_valid_on(on or info.context.today)

    @strawberry.field
    def medium(self) -> PermitMedium:  # type: ignore[valid-type]
        return self._record.medium

    @strawberry.field
    def holder(self) -> Foreigner:
        return Foreigner(_record=self._record.holder)

    @strawberry.field
    def employer(self) -> Employer:
        return Employer.of(self._record.employer)

    @strawberry.field
    def category(self) -> PermitCategory:  # type: ignore[valid-type]
        return self._record.category

    @strawberry.field
    def position(self) -> str:
        return self._record.position

    @strawberry.field
    def work_location(self) -> Region:
        return Region.of(self._record.work_location)

    @strawberry.field
    def notification_letter_number(self) -> str | None:
        return self._record.notification_letter_number

    @strawberry.field
    async def history(self, info: Ctx) -> list[PermitEvent] | None:
        return [
            PermitEvent.of(e) for e in await info.context.loaders.history.load(self._record.number)
        ]

    # Synchronous when `Query.permits` loaded them for its page (`schema.links`).
    @strawberry.field(
        description="The enrollment at the agency of the permit's work location.",
        graphql_type=Enrollment | None,
    )
    def enrollment(self, info: Ctx) -> AwaitableOrValue[Enrollment | None]:
        if refuses_agency(info, self._record.work_location, self._record.number):
            raise OutOfJurisdiction
        return then(enrollment_of(info.context.loaders, self._record), Enrollment.maybe)

    @strawberry.field(
        description="The cards under the SSN of the permit's enrollment.",
        graphql_type=list[SocialSecurityCard] | None,
    )
    def cards(self, info: Ctx) -> AwaitableOrValue[list[SocialSecurityCard]]:
        if refuses_agency(info, self._record.work_location, self._record.number):
            raise OutOfJurisdiction
        return then(cards_of(info.context.loaders, self._record), SocialSecurityCard.all_of)

    @classmethod
    def of(cls, record: records.Permit) -> WorkPermit:
        return cls(
            _record=record,
            number=strawberry.ID(record.number),
            status=record.status,
            valid_from=record.valid_from,
            valid_until=record.valid_until,
        )

    @classmethod
    def maybe(cls, record: records.Permit | None) -> WorkPermit | None:
        return None if record is None else cls.of(record)

    @classmethod
    async def resolve_reference(cls, info: Ctx, number: str) -> WorkPermit | None:
        """`_entities` (`schema.entities`): as `Query.permit`, refused before the load when
        the document selects a bound field of it."""
        info.context.touched.permits.add(number)
        if refuses_permit(info, number):
            raise OutOfJurisdiction
        return cls.maybe(await info.context.loaders.permit.load(number))
