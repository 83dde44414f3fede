"""One person, one live enrollment, nationally: the hub's claim around an agency's write.

Each agency sees only its own region; the hub sees them all, so the hub keeps the rule. A
person is the WMS holder (`Foreigner.id`): the WMS is the one national register of foreigners'
permits, a holder keeps their id across permits, employers and regions, and the agencies store
it with every enrollment (`enrollments.person_id`), so the hub and `hub check duplicates` can ask
every agency about the same person. Nationality and passport number would not do: a renewed
passport has a new number, and the same person would count twice.

    claim the person (INSERT, unique per person, in the hub's database)
      held by another request?  live -> CONFLICT (existingRegion); dead -> release, claim again
    ask the other regions' agencies: an ACTIVE enrollment there -> release, CONFLICT
    the region's agency writes (it refuses a second active enrollment of the person itself)
    complete the claim with the SSN

A claim is live while its enrollment is ACTIVE at its agency, or, before it has an SSN, while
the write it guards may still be under way (younger than `stale_after`). An older claim without
an SSN is a write cut short (a crash, a timeout): the agencies are asked what became of it, so
it never blocks the person for good. A retry with the claim's own idempotency key continues the
claim (the agency replays or finishes the write) instead of conflicting with itself. Nothing
here takes a lock in the process: several hub instances share the database that decides.
"""

from __future__ import annotations

import datetime as dt
import uuid

from connectors.errors import PersonEnrolled, RegionNotServed, WriteConflict
from connectors.records import Enrollment, EnrollmentClaim, EnrollmentStatus, NewEnrollment
from connectors.sources import EnrollmentClaims, EnrollmentSource
from schema.workflows.errors import AlreadyEnrolled, KeyReused, WorkflowConflict

__all__ = ["enroll_one_person"]

_TAKEOVERS = 3  # a dead claim is released and claimed again; more races than this: a conflict


async def enroll_one_person(
    new: NewEnrollment, *, agencies: EnrollmentSource, claims: EnrollmentClaims
) -> tuple[Enrollment, bool]:
    """`agencies.enroll(new)` unless the person has, or is getting, a live enrollment elsewhere:
    (enrollment, created), or AlreadyEnrolled with nothing written at any agency."""
    held = await _hold(new, agencies, claims)
    pending = held.ssn is None
    if pending:
        elsewhere = [e for e in await agencies.active_of_person(new.holder.id)
                     if e.region != new.region]
        if elsewhere:
            await claims.release(held.claim_id)
            raise AlreadyEnrolled(elsewhere[0].region)
    try:
        enrollment, created = await agencies.enroll(new)
    except (WriteConflict, RegionNotServed) as refused:  # nothing was written
        if pending:
            await claims.release(held.claim_id)
        if isinstance(refused, PersonEnrolled):
            raise AlreadyEnrolled(refused.region) from None
        raise
    # Any other failure may have come after the agency's commit: the claim stays, pending; a
    # retry with the key continues it, and once stale the agencies say what became of it.
    if pending:
        await claims.complete(held.claim_id, enrollment.ssn, enrollment.region)
    return enrollment, created


async def _hold(
    new: NewEnrollment, agencies: EnrollmentSource, claims: EnrollmentClaims
) -> EnrollmentClaim:
    """The claim this request may write under: its own, or its idempotency key's."""
    for _ in range(_TAKEOVERS):
        now = dt.datetime.now(dt.UTC)
        wanted = EnrollmentClaim(
            person_id=new.holder.id,
            claim_id=str(uuid.uuid4()),
            region=new.region,
            idempotency_key=new.idempotency_key,
            request_hash=new.request_hash,
            claimed_at=now,
        )
        held = await claims.claim(wanted)
        if held.claim_id == wanted.claim_id:
            return held
        if held.idempotency_key == new.idempotency_key:
            if held.request_hash != new.request_hash:
                raise KeyReused("enrollment request")
            return held  # a retry, or its twin in flight: the agency replays
        live_in = await _live_region(held, agencies, claims, now)
        if live_in is not None:
            raise AlreadyEnrolled(live_in)
        await claims.release(held.claim_id)
    raise WorkflowConflict("the person's enrollment is changing; retry")


async def _live_region(
    held: EnrollmentClaim, agencies: EnrollmentSource, claims: EnrollmentClaims,
    now: dt.datetime,
) -> str | None:
    """The region of the live enrollment `held` stands for, or None if it stands for none."""
    if held.ssn is not None:
        found = (await agencies.by_ssns([held.ssn])).get(held.ssn)
        if found is not None and found.status is EnrollmentStatus.ACTIVE:
            return held.region
        return None  # ended (or gone) since: the person may be enrolled again
    if now - held.claimed_at < claims.stale_after:
        return held.region  # its write may still be under way
    active = await agencies.active_of_person(held.person_id)
    if not active:
        return None
    await claims.complete(held.claim_id, active[0].ssn, active[0].region)
    return active[0].region
