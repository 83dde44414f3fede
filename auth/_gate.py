"""What stands before client authentication at the token and revocation endpoints.

Each request is first checked cheaply: Basic credentials that are not UTF-8 and client ids the
registry could never hold are refused as `invalid_client` without a lookup, and a request using
more than one authentication method as `invalid_request` (RFC 6749 5.2); then the shared
failure throttle (`auth._throttle`) refuses attempts from an address or for a client id that
failed too often, with HTTP 429, `invalid_client` and `Retry-After`, without hashing anything.
Requests that may verify a client secret then wait for one of a few hashing slots (argon2 holds
`secret_hash_memory_kib` per verification, so unbounded concurrency means unbounded memory) and
are checked against the throttle again when their turn comes, so a burst queued at once is cut
at the limit too.

Never: hash a secret for a refused attempt; hold a worker thread while waiting for a slot.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from auth._throttle import FailureThrottle, Throttled
from auth.clients import valid_client_id
from auth.server import BadCredentials, OAuthServer, TokenRequest

__all__ = ["Answer", "ClientAuthGate"]

Endpoint = Callable[[OAuthServer, TokenRequest], Awaitable[tuple[int, Any, list]]]


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any
    headers: list[tuple[str, str]]
    address: str
    claimed: str | None  # the client id the request claimed, unverified (None if malformed)
    throttled: Throttled | None = None


def _throttled_answer(throttled: Throttled, address: str, claimed: str | None) -> Answer:
    # 429 rather than 401: the credentials were not even checked, and clients and proxies
    # know to wait for Retry-After on a 429. The RFC 6749 error stays `invalid_client`.
    body = {"error": "invalid_client",
            "error_description": "too many failed client authentications; retry later"}
    headers = [("Cache-Control", "no-store"), ("Pragma", "no-cache"),
               ("Retry-After", str(throttled.retry_after))]
    return Answer(429, body, headers, address, claimed, throttled)


class ClientAuthGate:
    def __init__(self, server: OAuthServer, throttle: FailureThrottle, max_hashes: int) -> None:
        self._server = server
        self._throttle = throttle
        self._hashing = asyncio.Semaphore(max_hashes)

    async def run(self, request: TokenRequest, address: str, endpoint: Endpoint) -> Answer:
        """Raises KeyValueUnavailable from the endpoint (a client assertion's jti check)."""
        try:
            claimed = request.claimed_client_id()
        except BadCredentials as exc:
            return await self._refused(request, address, None, str(exc))
        if claimed is not None and not valid_client_id(claimed):
            return await self._refused(request, address, claimed, "client authentication failed")
        if request.auth_mechanisms() > 1:
            description = "more than one client authentication method"
            return Answer(*self._server.refuse_request(request, description), address, claimed)
        throttled = await self._throttle.check(claimed, address)
        if throttled is not None:
            return _throttled_answer(throttled, address, claimed)
        if not request.hashes_secret:
            return await self._heard(request, address, claimed, endpoint)
        async with self._hashing:
            # Again now that it is this attempt's turn: the ones before it may have failed.
            throttled = await self._throttle.check(claimed, address)
            if throttled is not None:
                return _throttled_answer(throttled, address, claimed)
            return await self._heard(request, address, claimed, endpoint)

    async def _heard(
        self, request: TokenRequest, address: str, claimed: str | None, endpoint: Endpoint
    ) -> Answer:
        status, body, headers = await endpoint(self._server, request)
        if status == 401:  # invalid_client: the only 401 these endpoints give
            await self._throttle.failed(claimed, address)
        elif status == 200 and request.client is not None:
            await self._throttle.succeeded(request.client.get_client_id(), address)
        return Answer(status, body, headers, address, claimed)

    async def _refused(
        self, request: TokenRequest, address: str, claimed: str | None, description: str
    ) -> Answer:
        await self._throttle.failed(claimed, address)
        # A malformed id is recorded as claimed: the audit record bounds it and replaces its
        # control characters, and "who tried" is what an auditor asks of a refusal.
        return Answer(*self._server.refuse_client(request, description), address, claimed)
