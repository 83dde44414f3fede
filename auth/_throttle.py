"""Throttling of failed client authentication, shared by every hub instance.

Failures are counted per claimed client id and per client address in fixed one-minute windows
in the shared key-value store (Redis in production), so an attacker cannot spread attempts over
instances. Once either count is over the limit, further attempts in that window are refused
before any secret is hashed (and are not counted: they were not heard). An address from which a
client has authenticated in the last week stays exempt from that client's id count, so an
attacker hammering a known id does not lock the agency out of its own gateway; the address count
still applies to it. A new address of that client is refused while its id is throttled.

Never: store a client id, an address or a secret in a key (keys carry digests).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass

from connectors.kv import Count, KeyValue

__all__ = ["Attempt", "FailureThrottle", "Throttled"]

_WINDOW_SECONDS = 60
_KNOWN_ADDRESS_SECONDS = 7 * 86400


def _digest(*parts: str) -> str:
    return hashlib.sha256("\n".join(parts).encode("utf-8", "surrogateescape")).hexdigest()[:32]


@dataclass(frozen=True)
class Throttled:
    """The attempt is refused; the caller may try again after `retry_after` seconds."""

    retry_after: int
    by: str  # "address" or "client"


@dataclass(frozen=True)
class Attempt:
    client_id: str | None
    address: str
    window: int
    throttled: Throttled | None


class FailureThrottle:
    """Each attempt is counted as a failure when it arrives, atomically, and the count is given
    back once it turns out not to be one: so a burst that arrives at once is cut at the limit
    too, instead of every request in it passing a check made before any of them failed."""

    def __init__(self, kv: KeyValue, per_minute: int, clock: Callable[[], float]) -> None:
        self._kv = kv
        self._limit = per_minute
        self._clock = clock

    def _window(self) -> tuple[int, int]:
        """The current window's number, and the whole seconds left in it (at least 1)."""
        now = self._clock()
        window = int(now // _WINDOW_SECONDS)
        return window, max(1, math.ceil((window + 1) * _WINDOW_SECONDS - now))

    def _counts(self, client_id: str | None, address: str, window: int, amount: int) -> list[Count]:
        ttl = 2 * _WINDOW_SECONDS
        counts = [Count(f"auth:failures:address:{window}:{_digest(address)}", amount, ttl)]
        if client_id:
            counts.append(Count(f"auth:failures:client:{window}:{_digest(client_id)}", amount, ttl))
        return counts

    @staticmethod
    def _known_key(client_id: str, address: str) -> str:
        return f"auth:known-address:{_digest(client_id, address)}"

    async def attempt(self, client_id: str | None, address: str) -> Attempt:
        """Count an attempt; it is throttled if a count is over the limit.

        Raises KeyValueUnavailable: without the shared counts, the caller must refuse.
        """
        window, left = self._window()
        reads = [self._known_key(client_id, address)] if client_id else []
        known, counts = await self._kv.read_and_count(
            reads, self._counts(client_id, address, window, 1)
        )
        throttled = None
        if counts[0] > self._limit:
            throttled = Throttled(left, "address")
        elif client_id and counts[1] > self._limit and known[0] is None:
            throttled = Throttled(left, "client")
        return Attempt(client_id, address, window, throttled)

    async def not_a_failure(self, attempt: Attempt, authenticated: str | None) -> None:
        """Give back the attempt's counts; `authenticated` is the client it authenticated, if
        any, whose address is then known (exempt from that client id's count)."""
        await self._kv.read_and_count(
            [], self._counts(attempt.client_id, attempt.address, attempt.window, -1)
        )
        if authenticated is not None:
            known = self._known_key(authenticated, attempt.address)
            await self._kv.set(known, b"1", ttl_seconds=_KNOWN_ADDRESS_SECONDS)
