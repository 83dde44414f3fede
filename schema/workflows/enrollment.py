"""Register a foreigner's enrollment: verify the permit with the WMS, then assign the SSN.

    permit known, VALID, within its dates today, holder's name and nationality match
    -> the region's agency writes enrollment + SSN + idempotency record in one transaction

Everything the client can fix is a `WorkflowRejected` raised before any write. Conflicts with
what the agency holds (a reused key, a second active enrollment) come from the connector as
`WriteConflict`, with nothing written. No GraphQL import here.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import unicodedata
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass

from connectors.records import Enrollment, NewEnrollment, Permit, PermitStatus
from connectors.sources import EnrollmentSource
from schema.workflows.errors import WorkflowRejected

__all__ = [
    "EnrollmentRequest",
    "EnrollmentResult",
    "WorkflowRejected",
    "check_idempotency_key",
    "normalised_name",
    "register_enrollment",
]

MIN_KEY_LENGTH = 8
MAX_KEY_LENGTH = 128


@dataclass(frozen=True, slots=True)
class EnrollmentRequest:
    permit_number: str
    region: str
    name: str
    nationality: str
    employer_credit_code: str | None
    idempotency_key: str

    def digest(self) -> str:
        """Same request, same digest: names compared as `normalised_name` compares them."""
        canonical = {**asdict(self), "name": normalised_name(self.name)}
        canonical.pop("idempotency_key")
        return hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class EnrollmentResult:
    enrollment: Enrollment
    created: bool  # False: the key was used before for this request; its result is returned


def normalised_name(name: str) -> str:
    """Case, width and runs of whitespace do not make another person."""
    return " ".join(unicodedata.normalize("NFKC", name).casefold().split())


def check_idempotency_key(key: str) -> None:
    if not (MIN_KEY_LENGTH <= len(key) <= MAX_KEY_LENGTH and key.isascii() and key.isprintable()):
        raise WorkflowRejected(
            f"idempotencyKey: {MIN_KEY_LENGTH} to {MAX_KEY_LENGTH} printable ASCII characters"
        )


def _check_permit(permit: Permit | None, request: EnrollmentRequest, today: dt.date) -> Permit:
    if permit is None:
        raise WorkflowRejected("the Work Management System knows no such permit")
    if permit.status is not PermitStatus.VALID:
        raise WorkflowRejected(f"the permit is {permit.status.value}, not VALID")
    if not permit.valid_from <= today <= permit.valid_until:
        raise WorkflowRejected("the permit is not within its validity dates today")
    holder = permit.holder
    if (
        normalised_name(holder.name) != normalised_name(request.name)
        or holder.nationality != request.nationality.strip().upper()
    ):
        raise WorkflowRejected("name and nationality do not match the permit's holder")
    employer = request.employer_credit_code
    if employer is not None and employer != permit.employer.credit_code:
        raise WorkflowRejected("the employer is not the permit's employer")
    return permit


async def register_enrollment(
    request: EnrollmentRequest,
    *,
    load_permit: Callable[[str], Awaitable[Permit | None]],
    agencies: EnrollmentSource,
    today: dt.date,
) -> EnrollmentResult:
    check_idempotency_key(request.idempotency_key)
    if request.region not in agencies.regions():
        raise WorkflowRejected("no social-security agency of the hub serves this region")
    permit = _check_permit(await load_permit(request.permit_number), request, today)
    enrollment, created = await agencies.enroll(
        NewEnrollment(
            permit_number=permit.number,
            region=request.region,
            holder=permit.holder,
            employer_credit_code=permit.employer.credit_code,
            enrolled_on=today,
            idempotency_key=request.idempotency_key,
            request_hash=request.digest(),
        )
    )
    return EnrollmentResult(enrollment, created)
