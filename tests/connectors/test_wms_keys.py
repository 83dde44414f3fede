"""The WMS connector caches the QR signing keys and refetches them on an unknown kid."""

from __future__ import annotations

import httpx

from connectors.wms import HttpPermitSource
from simulators.wms import generate_signing_key
from tests.conftest import Simulators

JWKS = "GET /.well-known/jwks.json"


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def _fetches(simulators: Simulators) -> int:
    count: int = (await simulators.stats(simulators.wms_url))["requests"].get(JWKS, 0)
    return count


async def test_keys_are_cached_for_their_ttl_and_refetched_once_on_an_unknown_kid(
    simulators: Simulators,
) -> None:
    await simulators.reset()
    clock = _Clock()
    async with httpx.AsyncClient() as client:
        wms = HttpPermitSource(client, simulators.wms_url, key_cache_seconds=300, clock=clock)
        jwks = await wms.jwks()
        kid = jwks["keys"][0]["kid"]
        stranger = generate_signing_key().kid
        assert stranger is not None
        assert await wms.qr_key(kid) is not None
        assert await wms.qr_key(kid) is not None
        assert await wms.qr_key(stranger) is None  # within seconds of a fetch: no refetch
        assert await _fetches(simulators) == 2  # jwks() above, then one cached fetch
        clock.now += 10
        assert await wms.qr_key(stranger) is None  # unknown kid: one refetch
        assert await _fetches(simulators) == 3
        assert await wms.qr_key(kid) is not None
        clock.now += 301
        assert await wms.qr_key(kid) is not None  # expired: fetched again
        assert await _fetches(simulators) == 4
