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
    """Without an `http` client of the caller's, one is opened at the first fetch (and closed
    by `close`): a hub that trusts no IdP never opens one."""

    def __init__(self, http: httpx.AsyncClient | None, clock: Callable[[], float]) -> None:
        self._http = http
        self._own_http: httpx.AsyncClient | None = None
        self._clock = clock
        self._cache: dict[str, _Cached] = {}
        self._forced: dict[str, float] = {}
        self._lock = asyncio.Lock()

    async def find(self, issuer: TrustedIssuer, kid: object) -> Key | None:
        return await self.find_at(issuer.jwks_url, issuer.jwks_cache_seconds, kid)

    async def find_at(self, jwks_url: str, cache_seconds: float, kid: object) -> Key | None:
        """The key `kid` of the JWKS at `jwks_url` (cached per URL: a trusted issuer's, or an
        identity provider registered for token exchange)."""
        if not isinstance(kid, str):
            return None
        now = self._clock()
        cached = self._cache.get(jwks_url)
        fresh = cached is not None and now - cached.fetched_at < cache_seconds
        if cached is not None and fresh and kid in cached.keys:
            return cached.keys[kid]
        last_forced = self._forced.get(jwks_url, float("-inf"))
        if fresh and now - last_forced < _FORCED_REFETCH_INTERVAL:
            return None
        async with self._lock:
            self._forced[jwks_url] = now
            keys = await self._fetch(jwks_url)
            self._cache[jwks_url] = _Cached(keys, now)
        return keys.get(kid)

    async def close(self) -> None:
        if self._own_http is not None:
            await self._own_http.aclose()
            self._own_http = None

    async def _fetch(self, jwks_url: str) -> dict[str, Key]:
        http = self._http
        if http is None:
            http = self._own_http = self._own_http or httpx.AsyncClient(follow_redirects=False)
        try:
            response = await http.get(jwks_url, timeout=5.0)
            response.raise_for_status()
            if len(response.content) > _MAX_JWKS_BYTES:
                raise ValueError("JWKS too large")
            return public_signing_keys(response.json())
        except (httpx.HTTPError, ValueError):
            raise Unauthenticated("issuer keys unavailable") from None
