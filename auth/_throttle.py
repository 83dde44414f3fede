"""Throttling of failed client authentication, shared by every hub instance.

Failures are counted per claimed client id and per client address in fixed one-minute windows
in the shared key-value store (Redis in production), so an attacker cannot spread attempts over
instances. Once either count reaches the limit, further attempts in that window are refused
before any secret is hashed (and are not counted: they were not heard). An address from which a
client has authenticated in the last week stays exempt from that client's id count, so an
attacker hammering a known id does not lock the agency out of its own gateway; the address count
still applies to it. A new address of that client is refused while its id is throttled.
When the store cannot be reached the throttle is not applied (the hub keeps issuing tokens, as
it did before the throttle existed); the bound on concurrent hashing still holds.

Unlike the request rate (`infra.counters`, counted in each process and reconciled later), these
counts are read and written in the store on every attempt: guesses spread over N instances
should meet one exact count, not N counts that each lag a sync behind, and the round trip is
small next to the secret check it guards (argon2, about 0.2 s), off the GraphQL hot path.

Never: store a client id, an address or a secret in a key (keys carry digests).
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from infra import counters
from infra.kv import Count, KeyValue, KeyValueUnavailable

__all__ = ["FailureThrottle", "Throttled"]

_KNOWN_ADDRESS_SECONDS = 7 * 86400


def _digest(*parts: str) -> str:
    return hashlib.sha256("\n".join(parts).encode("utf-8", "surrogateescape")).hexdigest()[:32]


@dataclass(frozen=True)
class Throttled:
    """The attempt is refused; the caller may try again after `retry_after` seconds."""

    retry_after: int
    by: str  # "address" or "client"


class FailureThrottle:
    """Failures are counted once they are known; an attempt is checked against the counts
    before it is heard. (Counting every attempt on arrival would cut bursts sooner but also
    throttle an agency whose fifty workers fetch a token at the same moment.)"""

    def __init__(self, kv: KeyValue, per_minute: int, clock: Callable[[], float]) -> None:
        self._kv = kv
        self._limit = per_minute
        self._clock = clock

    def _window(self) -> tuple[int, int]:
        """The current window's number, and the whole seconds left in it (at least 1)."""
        return counters.window(self._clock())

    @staticmethod
    def _keys(client_id: str | None, address: str, window: int) -> tuple[str, str, str]:
        """The address's failure count, the client id's, and whether the address is known."""
        return (
            f"auth:failures:address:{window}:{_digest(address)}",
            f"auth:failures:client:{window}:{_digest(client_id or '')}",
            f"auth:known-address:{_digest(client_id or '', address)}",
        )

    async def check(self, client_id: str | None, address: str) -> Throttled | None:
        window, left = self._window()
        try:
            by_address, by_client, known = await self._kv.get_many(
                list(self._keys(client_id, address, window))
            )
        except KeyValueUnavailable:
            return None  # fail open: tokens are still issued, the hashing bound still holds
        if int(by_address or 0) >= self._limit:
            return Throttled(left, "address")
        if client_id and int(by_client or 0) >= self._limit and known is None:
            return Throttled(left, "client")
        return None

    async def failed(self, client_id: str | None, address: str) -> None:
        window, _ = self._window()
        address_key, client_key, _ = self._keys(client_id, address, window)
        ttl = 2 * counters.WINDOW_SECONDS
        counts = [Count(address_key, 1, ttl)] + ([Count(client_key, 1, ttl)] if client_id else [])
        with contextlib.suppress(KeyValueUnavailable):
            await self._kv.incr_many(counts)

    async def succeeded(self, client_id: str, address: str) -> None:
        """`client_id` authenticated from `address`: exempt it from that id's count."""
        known = self._keys(client_id, address, 0)[2]
        with contextlib.suppress(KeyValueUnavailable):
            await self._kv.set(known, b"1", ttl_seconds=_KNOWN_ADDRESS_SECONDS)
