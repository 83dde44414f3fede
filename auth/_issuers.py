"""Public keys of trusted external identity providers, fetched over HTTP and cached.

The JWKS of each issuer is cached for `jwks_cache_seconds` and fetched again at once (at most
every few seconds) when a token names an unknown kid, so an IdP's key rotation is picked up.
httpx errors are translated here: nothing above sees an httpx exception. Private or symmetric
keys in a fetched JWKS are dropped: only asymmetric public keys can verify.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

import httpx
from joserfc.jwk import Key

from auth.config import TrustedIssuer
from auth.errors import Unauthenticated
from infra.jwks import public_signing_keys

__all__ = ["IssuerKeys"]

_MAX_JWKS_BYTES = 256 * 1024
_FORCED_REFETCH_INTERVAL = 5.0


@dataclass
class _Cached:
    keys: dict[str, Key]
    fetched_at: float


class IssuerKeys:
    def __init__(self, http: httpx.AsyncClient | None, clock: Callable[[], float]) -> None:
        self._http = http
        self._clock = clock
        self._cache: dict[str, _Cached] = {}
        self._forced: dict[str, float] = {}
        self._lock = asyncio.Lock()

    async def find(self, issuer: TrustedIssuer, kid: object) -> Key | None:
        if not isinstance(kid, str):
            return None
        now = self._clock()
        cached = self._cache.get(issuer.issuer)
        fresh = cached is not None and now - cached.fetched_at < issuer.jwks_cache_seconds
        if cached is not None and fresh and kid in cached.keys:
            return cached.keys[kid]
        last_forced = self._forced.get(issuer.issuer, float("-inf"))
        if fresh and now - last_forced < _FORCED_REFETCH_INTERVAL:
            return None
        async with self._lock:
            self._forced[issuer.issuer] = now
            keys = await self._fetch(issuer)
            self._cache[issuer.issuer] = _Cached(keys, now)
        return keys.get(kid)

    async def _fetch(self, issuer: TrustedIssuer) -> dict[str, Key]:
        if self._http is None:
            raise Unauthenticated("issuer keys unavailable")
        try:
            response = await self._http.get(issuer.jwks_url, timeout=5.0)
            response.raise_for_status()
            if len(response.content) > _MAX_JWKS_BYTES:
                raise ValueError("JWKS too large")
            return public_signing_keys(response.json())
        except (httpx.HTTPError, ValueError):
            raise Unauthenticated("issuer keys unavailable") from None
