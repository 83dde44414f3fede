"""The denylist every hub instance shares (DESIGN section 7): revoked tokens, disabled clients.

Entries live in the shared key-value store (Redis), so a revocation on one instance is honoured
by all. A revoked token's entry expires when the token would have. Checks FAIL CLOSED: when the
store cannot be reached the request is refused ("revocation status unavailable"), never let
through. Keys carry hashes of (issuer, jti), never a token.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from auth.errors import Unauthenticated
from connectors.kv import KeyValue, KeyValueUnavailable

__all__ = ["Denylist"]

_MIN_TTL = 1.0


def _token_key(issuer: str, jti: str) -> str:
    digest = hashlib.sha256(f"{issuer}\n{jti}".encode()).hexdigest()[:40]
    return f"auth:revoked:{digest}"


def _client_key(client_id: str) -> str:
    return f"auth:client-disabled:{client_id}"


class Denylist:
    def __init__(self, kv: KeyValue, leeway_seconds: float, clock: Callable[[], float]) -> None:
        self._kv = kv
        self._leeway = leeway_seconds
        self._clock = clock

    async def revoke(self, issuer: str, jti: str, expires_at: float) -> None:
        """Raises KeyValueUnavailable: a revocation that was not recorded must not look done."""
        ttl = max(_MIN_TTL, expires_at - self._clock() + self._leeway)
        await self._kv.set(_token_key(issuer, jti), b"1", ttl_seconds=ttl)

    async def set_client_disabled(self, client_id: str, disabled: bool) -> None:
        if disabled:
            await self._kv.set(_client_key(client_id), b"1")
        else:
            await self._kv.delete(_client_key(client_id))

    async def check(self, issuer: str, jti: str, client_id: str) -> None:
        """One round trip for both questions; refuses when either is denied or unknown."""
        try:
            values = await self._kv.get_many(self.keys(issuer, jti, client_id))
        except KeyValueUnavailable:
            raise Unauthenticated("revocation status unavailable") from None
        self.judge(values)

    @staticmethod
    def keys(issuer: str, jti: str, client_id: str) -> list[str]:
        """The entries `check` reads, for a caller that reads them with other keys at once."""
        return [_token_key(issuer, jti), _client_key(client_id)]

    @staticmethod
    def judge(values: list[bytes | None]) -> None:
        """Raises Unauthenticated if the entries read for `keys` deny the token."""
        revoked, disabled = values
        if revoked is not None:
            raise Unauthenticated("token revoked")
        if disabled is not None:
            raise Unauthenticated("client disabled")
