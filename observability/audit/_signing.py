"""Who signs checkpoints and evidence, and how a signature is checked offline against a JWKS.

The hub's `AuthService` already satisfies `Signer` (its `sign_jws` and `jwks`), so checkpoints and
evidence are signed with the same keys as access tokens, published at `/.well-known/jwks.json`.
Each use has its own `typ`, and the check insists on it: a checkpoint can never pass for
evidence, nor either for an access token (whose `typ` is `at+jwt`). `LocalSigner` is for tests
and offline tools.

Keys rotate out of the published JWKS; whoever must check evidence years later keeps the JWKS
they checked it with (the hub's archive, or the agency's copy).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any, Protocol

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet

__all__ = [
    "CHECKPOINT_TYP",
    "EVIDENCE_TYP",
    "LocalSigner",
    "SignatureCheck",
    "Signer",
    "check_signature",
]

CHECKPOINT_TYP = "audit-checkpoint+jws"
EVIDENCE_TYP = "audit-evidence+jws"
_ALGORITHMS = ("ES256", "ES384", "ES512", "EdDSA")


class Signer(Protocol):
    """Signs with the hub's current key; `AuthService` is one."""

    async def sign_jws(self, payload: bytes, typ: str = "JOSE") -> str:
        """A compact JWS over `payload` whose protected header carries `typ`."""
        ...

    def jwks(self) -> dict[str, list[dict[str, Any]]]:
        """The public keys that verify what this signer signs (and signed recently)."""
        ...


class LocalSigner:
    """An in-memory ES256 key: for tests and offline tools, never for a running hub."""

    def __init__(self, key: ECKey | None = None) -> None:
        self._key = key or ECKey.generate_key(
            "P-256", {"kid": secrets.token_urlsafe(8), "alg": "ES256", "use": "sig"},
            private=True,
        )

    @classmethod
    def from_jwk(cls, jwk: dict[str, Any]) -> LocalSigner:
        return cls(ECKey.import_key(jwk))

    def private_jwk(self) -> dict[str, Any]:
        return dict(self._key.as_dict(private=True))

    async def sign_jws(self, payload: bytes, typ: str = "JOSE") -> str:
        header = {"alg": "ES256", "kid": self._key.kid, "typ": typ}
        return jws.serialize_compact(header, payload, self._key, algorithms=["ES256"])

    def jwks(self) -> dict[str, list[dict[str, Any]]]:
        return {"keys": [dict(self._key.as_dict(private=False))]}


@dataclass(frozen=True)
class SignatureCheck:
    """A verified payload, or why not."""

    payload: bytes | None
    kid: str | None
    reason: str | None

    @property
    def ok(self) -> bool:
        return self.reason is None


def check_signature(token: str, typ: str, jwks: dict[str, Any]) -> SignatureCheck:
    """Verify a compact JWS of type `typ` against `jwks`; never raises on bad input."""
    try:
        keys = KeySet.import_key_set(jwks)  # type: ignore[arg-type]
        header = jws.extract_compact(token.encode("ascii")).headers()
    except (JoseError, ValueError, TypeError, KeyError, UnicodeError) as exc:
        return SignatureCheck(None, None, f"malformed JWS or JWKS: {exc}")
    kid = header.get("kid") if isinstance(header.get("kid"), str) else None
    if header.get("typ") != typ:
        return SignatureCheck(None, kid, f"JWS type is {header.get('typ')!r}, not {typ!r}")
    try:
        verified = jws.deserialize_compact(token, keys, algorithms=list(_ALGORITHMS))
    except (JoseError, ValueError) as exc:
        return SignatureCheck(None, kid, f"signature does not verify (kid={kid}): {exc}")
    return SignatureCheck(verified.payload, kid, None)
