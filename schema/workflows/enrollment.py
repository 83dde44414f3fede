"""Register a foreigner's enrollment: verify the permit with the WMS, then assign the SSN.

    identifiers well formed (checked at admission)                       BAD_USER_INPUT
    -> permit's region in the client's jurisdiction (no source called)   FORBIDDEN
    -> idempotency key well formed                                       BAD_USER_INPUT
    -> the key, if an agency holds it, held for this very request        CONFLICT
    -> the region asked for is the permit's, an agency of the hub serves it
    -> permit known, VALID, within its dates today, holder's name and nationality match
    -> the person holds no live enrollment in any region (`schema.workflows.one_person`)
    -> the region's agency writes enrollment + SSN + idempotency record in one transaction

A permit outside the client's jurisdiction is `OutOfJurisdiction`, decided from its number
before the WMS or an agency is asked. Everything the client can fix is a `WorkflowRejected`
raised before any write. Conflicts with what is held (a reused key, a live enrollment of the
person here or elsewhere) are `WriteConflict`/`WorkflowConflict`, with nothing written. No
GraphQL import here.

The key comes before every check of what the input says: the same key with other input is a
CONFLICT whatever else is wrong with that input (a wrong name, another region), since the
client's mistake is the key. Only what makes the request unreadable (a malformed identifier or
key) or not the client's to ask (jurisdiction, decided without any source system) comes first.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import unicodedata
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass

from connectors.records import Enrollment, NewEnrollment, Permit, PermitStatus
from connectors.sources import EnrollmentClaims, EnrollmentSource
from infra.regions import covers, region_of_permit
from schema.workflows.errors import KeyReused, OutOfJurisdiction, WorkflowRejected
from schema.workflows.one_person import enroll_one_person

__all__ = [
    "EnrollmentRequest",
    "EnrollmentResult",
    "WorkflowRejected",
    "check_idempotency_key",
    "check_jurisdiction",
    "check_region",
    "normalised_name",
    "register_enrollment",
]

MIN_KEY_LENGTH = 8
MAX_KEY_LENGTH = 128


@dataclass(frozen=True, slots=True)
class EnrollmentRequest:
    permit_number: str
    region: str  # as given, else the permit's (`region_of_permit`): the same either way
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


def check_jurisdiction(request: EnrollmentRequest, jurisdiction: tuple[str, ...]) -> str:
    """The permit's region, if the client serves it.

    Decided from the permit number alone, so a refusal costs no source-system call.
    """
    region = region_of_permit(request.permit_number)
    if not covers(jurisdiction, region):
        raise OutOfJurisdiction(
            f"the permit's region {region} is outside the client's jurisdiction"
        )
    return region


def check_region(request: EnrollmentRequest, jurisdiction: tuple[str, ...]) -> str:
    """The region the enrollment is made in: the permit's, if the client serves it."""
    region = check_jurisdiction(request, jurisdiction)
    if request.region != region:
        raise WorkflowRejected(
            f"region: an enrollment is made in its permit's region; give {region} or leave it out"
        )
    return region


async def register_enrollment(
    request: EnrollmentRequest,
    *,
    jurisdiction: tuple[str, ...],
    load_permit: Callable[[str], Awaitable[Permit | None]],
    agencies: EnrollmentSource,
    claims: EnrollmentClaims,
    today: dt.date,
) -> EnrollmentResult:
    check_jurisdiction(request, jurisdiction)
    check_idempotency_key(request.idempotency_key)
    stored = await agencies.request_of_key(request.idempotency_key)
    if stored is not None and stored != request.digest():
        raise KeyReused("enrollment request")
    region = check_region(request, jurisdiction)
    if region not in agencies.regions():
        raise WorkflowRejected("no social-security agency of the hub serves this region")
    permit = _check_permit(await load_permit(request.permit_number), request, today)
    new = NewEnrollment(
        permit_number=permit.number,
        region=region,
        holder=permit.holder,
        employer_credit_code=permit.employer.credit_code,
        enrolled_on=today,
        idempotency_key=request.idempotency_key,
        request_hash=request.digest(),
    )
    enrollment, created = await enroll_one_person(new, agencies=agencies, claims=claims)
    return EnrollmentResult(enrollment, created)
