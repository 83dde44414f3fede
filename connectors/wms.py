"""Work Management System connector over its HTTP JSON API. Knows nothing of GraphQL.

`qr` asks the WMS for a permit's QR code (the e-SSC app shows its holder's): the WMS signs it,
the hub only passes it on, so `verifyPermitQr` checks it as any other.

The public keys that sign the WMS's QR codes are cached in-process for `key_cache_seconds`;
a kid not in the cache makes one fetch at once (at most every few seconds, so forged kids
cannot turn into a flood of requests), which picks up the WMS's key rotation.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import httpx
from joserfc.jwk import Key

from connectors._http import map_http_errors
from connectors.records import Permit, PermitEvent
from connectors.resilience import Guard, Policy
from connectors.wire import event_from_wire, permit_from_wire
from infra.jwks import public_signing_keys

UPSTREAM = "wms"
_FORCED_REFETCH_SECONDS = 5.0


class HttpPermitSource:
    def __init__(
        self,
        client: httpx.AsyncClient,
        base_url: str,
        *,
        key_cache_seconds: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        guard: Guard | None = None,
    ) -> None:
        self.guard = guard or Guard(UPSTREAM, Policy())
        self._client = client
        self._base = base_url.rstrip("/")
        self._key_ttl = key_cache_seconds
        self._clock = clock
        self._keys: dict[str, Key] = {}
        self._keys_fetched = float("-inf")
        self._keys_lock = asyncio.Lock()

    async def _post(self, path: str, body: dict[str, Any]) -> Any:
        """A batch read (POST only because the keys do not fit a URL): safe to retry."""

        async def post() -> Any:
            with map_http_errors(UPSTREAM):
                response = await self._client.post(self._base + path, json=body)
                response.raise_for_status()
                return response.json()

        return await self.guard.read(post)

    async def permits(self, numbers: Sequence[str]) -> Mapping[str, Permit]:
        if not numbers:
            return {}
        payload = await self._post("/permits:batch", {"numbers": list(numbers)})
        with map_http_errors(UPSTREAM):
            found = [permit_from_wire(p) for p in payload["permits"] if p is not None]
        return {p.number: p for p in found}

    async def histories(self, numbers: Sequence[str]) -> Mapping[str, tuple[PermitEvent, ...]]:
        if not numbers:
            return {}
        payload = await self._post("/permits/history:batch", {"numbers": list(numbers)})
        with map_http_errors(UPSTREAM):
            return {
                number: tuple(event_from_wire(e) for e in events)
                for number, events in payload["history"].items()
            }

    async def permits_of_holders(self, holder_ids: Sequence[str]) -> Mapping[str, tuple[str, ...]]:
        if not holder_ids:
            return {}
        payload = await self._post("/foreigners/permits:batch", {"ids": list(holder_ids)})
        with map_http_errors(UPSTREAM):
            return {k: tuple(str(n) for n in v) for k, v in payload["permits"].items()}

    async def qr(self, number: str) -> str | None:
        """The QR code payload the WMS signs for permit `number` (a compact JWS), None if the
        WMS does not know the permit. The WMS picks the code's lifetime."""

        async def get() -> str | None:
            with map_http_errors(UPSTREAM):
                response = await self._client.get(f"{self._base}/permits/{number}/qr")
                if response.status_code == 404:
                    return None
                response.raise_for_status()
                payload = response.json()["payload"]
                if not isinstance(payload, str):
                    raise ValueError("payload")
                return payload

        return await self.guard.read(get)

    async def jwks(self) -> dict[str, Any]:
        async def get() -> dict[str, Any]:
            with map_http_errors(UPSTREAM):
                response = await self._client.get(self._base + "/.well-known/jwks.json")
                response.raise_for_status()
                keys: dict[str, Any] = response.json()
                return keys

        return await self.guard.read(get)

    async def qr_key(self, kid: str) -> Key | None:
        """The WMS's public key `kid` for QR codes, or None if the WMS does not serve it."""
        now = self._clock()
        age = now - self._keys_fetched
        if kid in self._keys and age < self._key_ttl:
            return self._keys[kid]
        if age < _FORCED_REFETCH_SECONDS:
            return None
        async with self._keys_lock:
            if self._keys_fetched < now:  # nobody refreshed while we waited
                keys = await self.jwks()
                with map_http_errors(UPSTREAM):
                    self._keys = public_signing_keys(keys)
                self._keys_fetched = self._clock()
        return self._keys.get(kid)

    async def ping(self) -> bool:
        try:
            response = await self._client.get(self._base + "/healthz")
        except httpx.HTTPError:
            return False
        return response.status_code == 200
