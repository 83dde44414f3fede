"""The mutation root. Input identifiers were validated before execution (`schema.arguments`);
each mutation hands its input to a workflow and wraps what comes back.
"""

from __future__ import annotations

import strawberry

from infra.regions import region_of_permit
from schema.card_mutations import (
    BatchCardApplicationInput,
    BatchCardApplicationPayload,
    CardApplicationInput,
    CardApplicationPayload,
    UpdateCardStatusInput,
    UpdateCardStatusPayload,
    apply_batch,
    apply_one,
    change_status,
)
from schema.types import Ctx, Enrollment
from schema.workflows.enrollment import EnrollmentRequest, register_enrollment
from schema.workflows.errors import OutOfJurisdiction

__all__ = ["Mutation", "RegisterEnrollmentInput", "RegisterEnrollmentPayload"]


@strawberry.input(description="Enroll the holder of a work permit at a region's agency.")
class RegisterEnrollmentInput:
    permit_number: strawberry.ID
    region: strawberry.ID | None = strawberry.field(
        default=None,
        description="GB/T 2260 code of the agency: the permit's region (its number's first six "
        "digits), where every enrollment is made. Optional; another region is BAD_USER_INPUT.",
    )
    name: str = strawberry.field(description="As on the permit; case and spacing are ignored.")
    nationality: str = strawberry.field(description="ISO 3166-1 alpha-3.")
    idempotency_key: str = strawberry.field(
        description="8-128 printable ASCII characters; a retry with the same key and input "
        "returns the first result, the same key with other input is a CONFLICT."
    )
    employer_credit_code: strawberry.ID | None = strawberry.field(
        default=None, description="If given, must be the permit's employer."
    )

    def request(self) -> EnrollmentRequest:
        number = str(self.permit_number)
        return EnrollmentRequest(
            permit_number=number,
            # Left out: the permit's, so that a retry with or without it is the same request.
            region=str(self.region) if self.region else region_of_permit(number),
            name=self.name,
            nationality=self.nationality,
            employer_credit_code=(
                str(self.employer_credit_code) if self.employer_credit_code else None
            ),
            idempotency_key=self.idempotency_key,
        )


@strawberry.type
class RegisterEnrollmentPayload:
    enrollment: Enrollment
    created: bool = strawberry.field(description="False when an earlier call with the key did.")


@strawberry.type
class Mutation:
    @strawberry.mutation(
        description="Verify the permit with the WMS, then enroll and assign the SSN. "
        "Idempotent per idempotencyKey. Only for a permit in the client's jurisdiction "
        "(else FORBIDDEN, reason OUT_OF_JURISDICTION); a person with a live enrollment in any "
        "region is a CONFLICT whose extensions.existingRegion names it."
    )
    async def register_enrollment(
        self, info: Ctx, input: RegisterEnrollmentInput
    ) -> RegisterEnrollmentPayload:
        context = info.context
        request = input.request()
        context.touched.permits.add(request.permit_number)  # refused or not, it was named
        try:
            result = await register_enrollment(
                request, jurisdiction=context.jurisdiction,
                load_permit=context.loaders.permit.load, agencies=context.sources.enrollments,
                claims=context.sources.claims, today=context.today,
            )
        except OutOfJurisdiction:
            # Refused for who asked, nothing done: the record is DENIED, as a card's would be.
            context.touched.refused.add(request.permit_number)
            raise
        context.touched.ssns.add(result.enrollment.ssn)
        return RegisterEnrollmentPayload(
            enrollment=Enrollment.of(result.enrollment), created=result.created
        )

    @strawberry.mutation(
        description="Verify the holder, then apply for one card. Idempotent per idempotencyKey."
    )
    async def apply_for_card(
        self, info: Ctx, input: CardApplicationInput
    ) -> CardApplicationPayload:
        return await apply_one(info, input)

    @strawberry.mutation(
        description="An employer's batch of physical cards: one result per item, in order; "
        "the whole batch is idempotent per idempotencyKey."
    )
    async def apply_for_cards(
        self, info: Ctx, input: BatchCardApplicationInput
    ) -> BatchCardApplicationPayload:
        return await apply_batch(info, input)

    @strawberry.mutation(description="Move a card along its lifecycle (legal transitions only).")
    async def update_card_status(
        self, info: Ctx, input: UpdateCardStatusInput
    ) -> UpdateCardStatusPayload:
        return await change_status(info, input)
