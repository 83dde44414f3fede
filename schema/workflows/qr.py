"""Verify a permit's QR code: the WMS's signature, the code's expiry, the permit's current status.

Order matters: nothing is fetched for a payload that is not even a compact JWS (MALFORMED), and
the permit is looked up only once the signature and expiry hold, so a forged or stale code never
reveals whether a permit exists. A valid signature is not enough: a cancelled permit fails with
PERMIT_NOT_VALID. Only ES256 is accepted, whatever the header says. No GraphQL import here.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import Key

from connectors.identifiers import InvalidIdentifier, validate_permit_number
from connectors.records import Permit

__all__ = [
    "MAX_PAYLOAD_BYTES", "QrCheck", "QrReason", "QrSigningKeys", "expiry_of", "verify_permit_qr",
]

MAX_PAYLOAD_BYTES = 4096
ALGORITHMS = ("ES256",)
ISSUER = "wms"


class QrReason(StrEnum):
    MALFORMED = "MALFORMED"
    SIGNATURE_INVALID = "SIGNATURE_INVALID"
    CODE_EXPIRED = "CODE_EXPIRED"
    UNKNOWN_PERMIT = "UNKNOWN_PERMIT"
    PERMIT_NOT_VALID = "PERMIT_NOT_VALID"


@dataclass(frozen=True, slots=True)
class QrCheck:
    reason: QrReason | None  # None: the code is genuine and the permit valid today
    permit: Permit | None = None  # set once the code is known to be genuine and current

    @property
    def valid(self) -> bool:
        return self.reason is None


class QrSigningKeys(Protocol):
    async def qr_key(self, kid: str) -> Key | None: ...


def _compact(payload: str) -> jws.CompactSignature | None:
    if len(payload) > MAX_PAYLOAD_BYTES or not payload.isascii():
        return None
    try:
        return jws.extract_compact(payload.encode("ascii"))
    except (JoseError, ValueError, UnicodeError):
        return None


def _claims(compact: jws.CompactSignature) -> dict[str, Any] | None:
    try:
        claims = json.loads(compact.payload)
    except ValueError:
        return None
    return claims if isinstance(claims, dict) else None


def _signed_by(payload: str, key: Key) -> bool:
    try:
        jws.deserialize_compact(payload, key, algorithms=list(ALGORITHMS))
    except (JoseError, ValueError):
        return False
    return True


def expiry_of(payload: str) -> dt.datetime | None:
    """When a code the WMS just gave the hub stops scanning (its `exp`), for its holder to see;
    None if it says none. Read, not verified: the hub passes the WMS's code on unchanged."""
    compact = _compact(payload)
    claims = _claims(compact) if compact is not None else None
    expires = claims.get("exp") if claims is not None else None
    if not isinstance(expires, int):
        return None
    return dt.datetime.fromtimestamp(expires, dt.UTC)


async def verify_permit_qr(
    payload: str,
    keys: QrSigningKeys,
    load_permit: Callable[[str], Awaitable[Permit | None]],
    *,
    now: dt.datetime,
    today: dt.date,
) -> QrCheck:
    compact = _compact(payload)
    claims = _claims(compact) if compact is not None else None
    if compact is None or claims is None:
        return QrCheck(QrReason.MALFORMED)
    header = compact.headers()
    kid = header.get("kid")
    if header.get("alg") not in ALGORITHMS or not isinstance(kid, str):
        return QrCheck(QrReason.SIGNATURE_INVALID)
    key = await keys.qr_key(kid)
    if key is None or not _signed_by(payload, key):
        return QrCheck(QrReason.SIGNATURE_INVALID)
    expires, subject = claims.get("exp"), claims.get("sub")
    if claims.get("iss") != ISSUER or not isinstance(expires, int) or not isinstance(subject, str):
        return QrCheck(QrReason.MALFORMED)
    if now.timestamp() >= expires:
        return QrCheck(QrReason.CODE_EXPIRED)
    try:
        number = validate_permit_number(subject)
    except InvalidIdentifier:
        return QrCheck(QrReason.MALFORMED)
    permit = await load_permit(number)
    if permit is None:
        return QrCheck(QrReason.UNKNOWN_PERMIT)
    if not permit.is_valid_on(today):
        return QrCheck(QrReason.PERMIT_NOT_VALID, permit)
    return QrCheck(None, permit)
