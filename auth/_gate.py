"""What stands before client authentication at the token and revocation endpoints.

Each request is first checked cheaply: Basic credentials that are not UTF-8 and client ids the
registry could never hold are refused as `invalid_client` without a lookup, and a request using
more than one authentication method as `invalid_request` (RFC 6749 5.2); then the shared
failure throttle (`auth._throttle`) refuses attempts from an address or for a client id that
failed too often, with HTTP 429, `invalid_client` and `Retry-After`, without hashing anything.
Requests that may verify a client secret then wait for one of a few hashing slots (argon2 holds
`secret_hash_memory_kib` per verification, so unbounded concurrency means unbounded memory).
Attempts are counted when they arrive, so a burst waiting for a slot is cut at the limit too.

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
        """Raises KeyValueUnavailable: the throttle's counts are shared, and without them the
        caller must refuse rather than hash for anyone."""
        try:
            claimed = request.claimed_client_id()
        except BadCredentials as exc:
            await self._throttle.attempt(None, address)  # a failure, counted for the address
            return self._refused(request, address, str(exc))
        attempt = await self._throttle.attempt(claimed, address)
        if attempt.throttled is not None:
            await self._throttle.not_a_failure(attempt, None)  # not heard, so not counted
            return _throttled_answer(attempt.throttled, address, claimed)
        if claimed is not None and not valid_client_id(claimed):
            return self._refused(request, address, "client authentication failed")
        if request.auth_mechanisms() > 1:
            await self._throttle.not_a_failure(attempt, None)
            description = "more than one client authentication method"
            return Answer(*self._server.refuse_request(request, description), address, claimed)
        if request.hashes_secret:
            async with self._hashing:
                status, body, headers = await endpoint(self._server, request)
        else:
            status, body, headers = await endpoint(self._server, request)
        if status != 401:  # invalid_client is the only 401 these endpoints give
            client = request.client.get_client_id() if request.client is not None else None
            await self._throttle.not_a_failure(attempt, client if status == 200 else None)
        return Answer(status, body, headers, address, claimed)

    def _refused(self, request: TokenRequest, address: str, description: str) -> Answer:
        # A malformed id is counted but not recorded: it may hold a NUL or be huge.
        return Answer(*self._server.refuse_client(request, description), address, None)
