"""The QR workflow on its own, for what the WMS simulator cannot produce over HTTP.

The simulator signs codes only for permits it knows, so UNKNOWN_PERMIT (a genuine code whose
permit the WMS no longer knows) is checked here with a key of our own as the WMS key.
"""

from __future__ import annotations

import datetime as dt

from joserfc.jwk import Key

from connectors.identifiers import make_permit_number
from connectors.records import Permit
from schema.workflows.qr import QrReason, verify_permit_qr
from simulators.wms import generate_signing_key, qr_payload

KEY = generate_signing_key()
NOW = dt.datetime(2026, 1, 1, 12, tzinfo=dt.UTC)


class _Keys:
    async def qr_key(self, kid: str) -> Key | None:
        return KEY if kid == KEY.kid else None


async def _nobody(number: str) -> Permit | None:
    return None


async def test_a_genuine_code_of_a_permit_the_wms_does_not_know_is_unknown_permit() -> None:
    payload = qr_payload(KEY, make_permit_number("420100", 2024, 1234567), now=NOW)
    check = await verify_permit_qr(payload, _Keys(), _nobody, now=NOW, today=NOW.date())
    assert check.reason is QrReason.UNKNOWN_PERMIT and not check.valid and check.permit is None


async def test_a_genuine_code_naming_no_permit_number_is_malformed() -> None:
    payload = qr_payload(KEY, "not-a-permit", now=NOW)
    check = await verify_permit_qr(payload, _Keys(), _nobody, now=NOW, today=NOW.date())
    assert check.reason is QrReason.MALFORMED
