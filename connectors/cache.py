"""Read-through cache of the Work Management System's permits, in the shared key-value store.

Records are cached whole, as the WMS sent them, keyed by permit number alone. That is safe for
authorization because the cache sits below GraphQL: what a client may see of a record is decided
by the field policy before execution, the same for a cached and a fresh record.

Invalidation must win every race, because a cancelled permit served as VALID is the one error
this hub must never make. Each permit has a generation counter (`permit-gen:<number>`); a cached
entry records the generation that was current *before* its upstream read began, and is only a
hit while that is still the current generation. `invalidate` bumps the counter, so an entry
written by a read that overlapped a change (read VALID, then the cancellation arrived, then the
write) is dead on arrival. Readers fetch entries and generations in one round trip.

The request path reads the entries of the permits a request names in the same round trip as
its shared checks (`keys_of`, then `primed`): a validity check makes one call to the store.

The cache fails open: if the store is unreachable the WMS is asked directly.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import orjson
from joserfc.jwk import Key
from opentelemetry.trace import NoOpTracer, Tracer

from connectors.records import Permit, PermitEvent
from connectors.sources import PermitSource
from connectors.wire import permit_from_wire, permit_to_wire
from infra.kv import KeyValue, KeyValueUnavailable

__all__ = ["CacheStats", "CachedPermitSource", "PrimedPermits"]

log = logging.getLogger("connectors.cache")


class CacheStats:
    def __init__(self) -> None:
        self.hits = 0
        self.misses = 0
        self.errors = 0


# Entries decoded lately, per process: about 1.8 kB each (the entry and its records), so some
# 18 MB at most. Hot permits (a counter's, a batch job's pages) then cost a lookup, not a parse.
DECODED_ENTRIES = 10_000


class CachedPermitSource:
    """A `PermitSource` that serves permits from the shared store when it can."""

    def __init__(
        self,
        inner: PermitSource,
        kv: KeyValue,
        ttl_seconds: float,
        tracer: Tracer | None = None,
        *,
        decoded_entries: int = DECODED_ENTRIES,
    ) -> None:
        self._inner = inner
        # entry bytes -> (generation, permit): the same bytes always decode to the same record,
        # and the generation is still checked against the current one on every read.
        self._decoded: dict[bytes, tuple[int, Permit]] = {}
        self._decoded_entries = decoded_entries
        self._tracer = tracer or NoOpTracer()
        self._kv = kv
        self._ttl = ttl_seconds
        self.stats = CacheStats()
        # A counter must outlive every entry written under it, or a reset counter could
        # match an old entry again.
        self._generation_ttl = max(86_400.0, 10 * ttl_seconds)

    @staticmethod
    def _entry(number: str) -> str:
        return f"permit:v1:{number}"

    @staticmethod
    def _generation(number: str) -> str:
        return f"permit-gen:{number}"

    def keys_of(self, numbers: Sequence[str]) -> list[str]:
        """The keys `permits(numbers)` reads from the shared store (none when not caching)."""
        if self._ttl <= 0:
            return []
        return [self._entry(n) for n in numbers] + [self._generation(n) for n in numbers]

    def primed(self, numbers: Sequence[str], values: Sequence[bytes | None]) -> PrimedPermits:
        """This source for one request, with `values` read already for `keys_of(numbers)`.

        Those permits are served from `values` (hits, or read through and stored as usual);
        any other permit is read as `permits` reads it.
        """
        if self._ttl <= 0 or not numbers:
            return PrimedPermits(self, {})
        count = len(numbers)
        if len(values) != 2 * count:
            raise ValueError(f"{len(values)} values for the {2 * count} keys of {count} permits")
        read = {n: (values[i], values[count + i]) for i, n in enumerate(numbers)}
        return PrimedPermits(self, read)

    def all_hits(
        self, read: Mapping[str, tuple[bytes | None, bytes | None]]
    ) -> dict[str, Permit] | None:
        """The permits of `read` (entry and generation per number), if every one is a hit."""
        found: dict[str, Permit] = {}
        for number, (entry, generation) in read.items():
            permit = self._hit(entry, int(generation or b"0"))
            if permit is None:
                return None
            found[number] = permit
        with self._tracer.start_as_current_span("cache.permits") as span:
            span.set_attribute("hub.cache.hits", len(found))
            span.set_attribute("hub.cache.misses", 0)
        self.stats.hits += len(found)
        return found

    async def permits(self, numbers: Sequence[str]) -> Mapping[str, Permit]:
        return await self.permits_with(numbers, None)

    async def permits_with(
        self, numbers: Sequence[str], read: Sequence[bytes | None] | None
    ) -> Mapping[str, Permit]:
        """`permits`, given what the store held for `keys_of(numbers)` (None: read it now)."""
        if not numbers or self._ttl <= 0:
            return await self._inner.permits(numbers)
        with self._tracer.start_as_current_span("cache.permits") as span:
            hits, misses = self.stats.hits, self.stats.misses
            try:
                return await self._read_through(numbers, read)
            finally:
                span.set_attribute("hub.cache.hits", self.stats.hits - hits)
                span.set_attribute("hub.cache.misses", self.stats.misses - misses)

    async def _read_through(
        self, numbers: Sequence[str], read: Sequence[bytes | None] | None
    ) -> Mapping[str, Permit]:
        values = read
        if values is None:
            try:
                values = await self._kv.get_many(self.keys_of(numbers))
            except KeyValueUnavailable:
                self.stats.errors += 1
                return await self._inner.permits(numbers)
        entries, generations = values[: len(numbers)], values[len(numbers) :]
        found: dict[str, Permit] = {}
        current: dict[str, int] = {}
        for number, entry, generation in zip(numbers, entries, generations, strict=True):
            current[number] = int(generation or b"0")
            permit = self._hit(entry, current[number])
            if permit is not None:
                found[number] = permit
        missing = [n for n in numbers if n not in found]
        self.stats.hits += len(found)
        self.stats.misses += len(missing)
        if missing:
            fetched = await self._inner.permits(missing)
            found.update(fetched)
            await self._store(fetched, current)
        return found

    def _hit(self, entry: bytes | None, generation: int) -> Permit | None:
        if entry is None:
            return None
        decoded = self._decoded.get(entry)
        if decoded is None:
            try:
                data = orjson.loads(entry)
                decoded = (data["gen"], permit_from_wire(data["permit"]))
            except (ValueError, KeyError, TypeError, AttributeError):
                return None  # an entry from another version of the hub: read through
            if len(self._decoded) >= self._decoded_entries:
                del self._decoded[next(iter(self._decoded))]  # the oldest
            self._decoded[entry] = decoded
        entry_generation, permit = decoded
        return permit if entry_generation == generation else None

    async def _store(self, fetched: Mapping[str, Permit], generations: Mapping[str, int]) -> None:
        items = {
            self._entry(number): orjson.dumps(
                {"gen": generations[number], "permit": permit_to_wire(permit)}
            )
            for number, permit in fetched.items()
        }
        try:
            await self._kv.set_many(items, self._ttl)
        except KeyValueUnavailable:
            self.stats.errors += 1

    async def invalidate(self, numbers: Sequence[str]) -> None:
        """Every cached copy of these permits is dead from now on, in every hub instance.

        Raises `KeyValueUnavailable`: an event whose invalidation cannot be recorded must be
        refused, so that the WMS sends it again.
        """
        for number in numbers:
            await self._kv.incr(self._generation(number), 1, ttl_seconds=self._generation_ttl)
        await self._kv.delete(*(self._entry(n) for n in numbers))

    async def histories(self, numbers: Sequence[str]) -> Mapping[str, tuple[PermitEvent, ...]]:
        return await self._inner.histories(numbers)

    async def permits_of_holders(self, holder_ids: Sequence[str]) -> Mapping[str, tuple[str, ...]]:
        return await self._inner.permits_of_holders(holder_ids)

    async def qr_key(self, kid: str) -> Key | None:
        return await self._inner.qr_key(kid)

    async def qr(self, number: str) -> str | None:
        return await self._inner.qr(number)  # a fresh code each time: never cached

    async def ping(self) -> bool:
        return await self._inner.ping()


class PrimedPermits:
    """`CachedPermitSource.primed`: one request's view, with some entries read already."""

    def __init__(
        self, cache: CachedPermitSource, read: dict[str, tuple[bytes | None, bytes | None]]
    ) -> None:
        self._cache = cache
        self._read = read

    def all_hits(self) -> dict[str, Permit]:
        """The permits read ahead, decoded now, if every one was a hit (else none of them).

        A request whose permits are all in the cache can then be answered without loading
        them: no DataLoader batch, no task. Those taken are no longer served by `permits`.
        """
        found = self._cache.all_hits(self._read) if self._read else None
        if not found:
            return {}
        self._read.clear()
        return found

    async def permits(self, numbers: Sequence[str]) -> Mapping[str, Permit]:
        if not numbers or any(n not in self._read for n in numbers):
            # Not all read ahead: one read of them all, so one call upstream at most.
            return await self._cache.permits(numbers)
        pairs = [self._read.pop(n) for n in numbers]  # used once: a later load reads afresh
        values = [entry for entry, _ in pairs] + [generation for _, generation in pairs]
        return await self._cache.permits_with(numbers, values)

    async def histories(self, numbers: Sequence[str]) -> Mapping[str, tuple[PermitEvent, ...]]:
        return await self._cache.histories(numbers)

    async def permits_of_holders(self, holder_ids: Sequence[str]) -> Mapping[str, tuple[str, ...]]:
        return await self._cache.permits_of_holders(holder_ids)

    async def qr_key(self, kid: str) -> Key | None:
        return await self._cache.qr_key(kid)

    async def qr(self, number: str) -> str | None:
        return await self._cache.qr(number)

    async def ping(self) -> bool:
        return await self._cache.ping()
