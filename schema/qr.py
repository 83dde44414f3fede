"""The GraphQL face of a QR code check (`Query.verifyPermitQr`); the logic is in workflows.qr."""

from __future__ import annotations

import datetime as dt

import strawberry

from schema.types import Ctx, WorkPermit
from schema.workflows.qr import QrCheck, verify_permit_qr

__all__ = ["QrVerification", "check_qr"]


@strawberry.type(description="The outcome of scanning a permit's QR code.")
class QrVerification:
    valid: bool
    reason: str | None = strawberry.field(
        description="MALFORMED, SIGNATURE_INVALID, CODE_EXPIRED, UNKNOWN_PERMIT, PERMIT_NOT_VALID."
    )
    permit: WorkPermit | None = strawberry.field(
        description="The permit, once the code is known to be genuine and current."
    )

    @classmethod
    def of(cls, check: QrCheck) -> QrVerification:
        reason = check.reason.value if check.reason else None
        return cls(valid=check.valid, reason=reason, permit=WorkPermit.maybe(check.permit))


async def check_qr(info: Ctx, payload: str) -> QrVerification:
    context = info.context
    check = await verify_permit_qr(
        payload, context.sources.permits, context.loaders.permit.load,
        now=dt.datetime.now(dt.UTC), today=context.today,
    )
    return QrVerification.of(check)
