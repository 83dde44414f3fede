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

The request path reads the entries of the permits a request names (`keys_of`, then `primed`)
in one call to the store, batched with the concurrent requests' reads, and only for permits
this instance holds no local copy of (below).

In front of the shared entries each instance keeps local copies (given the process's reader of
the shared-state stream, `infra.shared_state`): a request whose permits are all copied here
reads none of them from the store. `invalidate` appends a `permit-invalidated` entry naming
each permit with its new generation, and every instance drops its copy on reading it; a copy
remembers the generation it was read under and is not kept if a newer one is known. Copies are
served only while the replica heard the stream within `LOCAL_FRESHNESS_SECONDS` (otherwise the
shared entries decide, as without copies), and all are dropped when the replica cannot know
what it missed (`SharedState.on_reset`). So a copy can outlive a change accepted by another
instance only for the time the entry takes to arrive, milliseconds while Redis answers.

The cache fails open: if the store is unreachable the WMS is asked directly.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence

import orjson
from joserfc.jwk import Key
from opentelemetry.trace import NoOpTracer, Tracer

from connectors.records import Permit, PermitEvent
from connectors.sources import PermitSource
from connectors.wire import permit_from_wire, permit_to_wire
from infra.kv import KeyValue, KeyValueUnavailable
from infra.shared_state import SharedState

__all__ = ["COPIES_DROPPED", "INVALIDATED", "CacheStats", "CachedPermitSource", "PrimedPermits"]

log = logging.getLogger("connectors.cache")


class CacheStats:
    def __init__(self) -> None:
        self.hits = 0
        self.misses = 0
        self.errors = 0


# Entries decoded lately, per process: about 1.8 kB each (the entry and its records), so some
# 18 MB at most. Hot permits (a counter's, a batch job's pages) then cost a lookup, not a parse.
DECODED_ENTRIES = 10_000
INVALIDATED = "permit-invalidated"  # its kinds of shared-state entries
COPIES_DROPPED = "permit-copies-dropped"  # every local copy, in every instance (the bench's)
LOCAL_FRESHNESS_SECONDS = 1.0
_KNOWN_GENERATIONS = 100_000  # then those learnt over `_KNOWN_FOR` seconds ago are forgotten
_KNOWN_FOR = 300.0


class _Copy:
    """A local copy: the permit, the generation it was read under, until when it may serve."""

    __slots__ = ("era", "expires", "generation", "permit")

    def __init__(self, permit: Permit, generation: int, expires: float, era: int) -> None:
        self.permit, self.generation, self.expires, self.era = permit, generation, expires, era


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
        shared: SharedState | None = None,
    ) -> None:
        """`shared`: the process's reader of the shared-state stream; without it, no local
        copies (every read asks the store)."""
        self._inner = inner
        # entry bytes -> (generation, permit, written at): the same bytes always decode to the
        # same record, and the generation is still checked against the current one on every read.
        self._decoded: dict[bytes, tuple[int, Permit, float]] = {}
        self._shared = shared
        self._copies: dict[str, _Copy] = {}
        self._known: dict[str, tuple[int, float]] = {}  # the newest generation heard, and when
        self._era = 0  # moves when every copy is dropped: a read begun before keeps nothing
        if shared is not None:
            shared.on(INVALIDATED, self._on_invalidated)
            shared.on(COPIES_DROPPED, lambda _: self._drop_copies())
            shared.on_reset(self._drop_copies)
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
        """The keys `permits(numbers)` reads from the shared store: none when not caching, or
        when every one of them has a local copy to serve."""
        if self._ttl <= 0 or self.copies(numbers) is not None:
            return []
        return self._keys(numbers)

    def _keys(self, numbers: Sequence[str]) -> list[str]:
        return [self._entry(n) for n in numbers] + [self._generation(n) for n in numbers]

    def primed(self, numbers: Sequence[str], values: Sequence[bytes | None]) -> PrimedPermits:
        """This source for one request, with `values` read already for `keys_of(numbers)`.

        Those permits are served from `values` (hits, or read through and stored as usual);
        any other permit is read as `permits` reads it. No values: `keys_of` named none, the
        local copies are served if they still can be.
        """
        if self._ttl <= 0 or not numbers:
            return PrimedPermits(self, {})
        if not values:
            return PrimedPermits(self, {}, local=numbers)
        count = len(numbers)
        if len(values) != 2 * count:
            raise ValueError(f"{len(values)} values for the {2 * count} keys of {count} permits")
        read = {n: (values[i], values[count + i]) for i, n in enumerate(numbers)}
        return PrimedPermits(self, read)

    # -- local copies -------------------------------------------------------------------------

    def _serving_copies(self) -> bool:
        return self._shared is not None and self._shared.staleness <= LOCAL_FRESHNESS_SECONDS

    def _copy(self, number: str) -> Permit | None:
        copy = self._copies.get(number)
        if copy is None:
            return None
        if copy.era != self._era or copy.expires <= time.time():
            del self._copies[number]
            return None
        return copy.permit

    def copies(self, numbers: Sequence[str]) -> dict[str, Permit] | None:
        """The local copies of all of `numbers`, if each has one that may serve now."""
        if not numbers or not self._serving_copies():
            return None
        found: dict[str, Permit] = {}
        for number in numbers:
            permit = self._copy(number)
            if permit is None:
                return None
            found[number] = permit
        return found

    def _keep(self, number: str, permit: Permit, generation: int, written: float, era: int) -> None:
        """A copy of what was read under `generation`, unless a newer one is known by now."""
        if self._shared is None or era != self._era:
            return
        known = self._known.get(number)
        if known is not None and known[0] > generation:
            return
        if number not in self._copies and len(self._copies) >= self._decoded_entries:
            del self._copies[next(iter(self._copies))]  # the oldest
        self._copies[number] = _Copy(permit, generation, written + self._ttl, era)

    def _forget(self, number: str, generation: int) -> None:
        self._copies.pop(number, None)
        known = self._known.get(number)
        if known is None or known[0] < generation:
            if known is None and len(self._known) >= _KNOWN_GENERATIONS:
                horizon = time.monotonic() - _KNOWN_FOR
                self._known = {n: k for n, k in self._known.items() if k[1] > horizon}
            self._known[number] = (generation, time.monotonic())

    def _on_invalidated(self, fields: Mapping[str, bytes]) -> None:
        numbers, generations = fields["permits"].split(), fields["generations"].split()
        for number, generation in zip(numbers, generations, strict=True):
            self._forget(number.decode(), int(generation))

    async def _drop_copies(self) -> None:
        self._era += 1
        self._copies.clear()

    # -- reads ---------------------------------------------------------------------------------

    def all_hits(
        self, read: Mapping[str, tuple[bytes | None, bytes | None]]
    ) -> dict[str, Permit] | None:
        """The permits of `read` (entry and generation per number), if every one is a hit."""
        found: dict[str, Permit] = {}
        era = self._era
        kept: list[tuple[str, Permit, int, float]] = []
        for number, (entry, counter) in read.items():
            generation = int(counter or b"0")
            hit = self._hit_written(entry, generation)
            if hit is None:
                return None
            found[number] = hit[0]
            kept.append((number, hit[0], generation, hit[1]))
        for number, permit, generation, written in kept:
            self._keep(number, permit, generation, written, era)
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
        era = self._era  # before anything is read: a drop of every copy meanwhile wins
        local: dict[str, Permit] = {}
        values = read
        if values is None:
            if self._serving_copies():
                local = {n: p for n in numbers if (p := self._copy(n)) is not None}
                numbers = [n for n in numbers if n not in local]
                self.stats.hits += len(local)
                if not numbers:
                    return local
            try:
                values = await self._kv.get_many(self._keys(numbers))
            except KeyValueUnavailable:
                self.stats.errors += 1
                return local | dict(await self._inner.permits(numbers))
        entries, generations = values[: len(numbers)], values[len(numbers) :]
        found: dict[str, Permit] = {}
        current: dict[str, int] = {}
        for number, entry, generation in zip(numbers, entries, generations, strict=True):
            current[number] = int(generation or b"0")
            hit = self._hit_written(entry, current[number])
            if hit is not None:
                found[number] = hit[0]
                self._keep(number, hit[0], current[number], hit[1], era)
        missing = [n for n in numbers if n not in found]
        self.stats.hits += len(found)
        self.stats.misses += len(missing)
        if missing:
            fetched = await self._inner.permits(missing)
            found.update(fetched)
            written = time.time()
            for number, permit in fetched.items():
                self._keep(number, permit, current[number], written, era)
            await self._store(fetched, current, written)
        return local | found

    def _hit_written(self, entry: bytes | None, generation: int) -> tuple[Permit, float] | None:
        """The entry's permit and when it was written, if it is a hit under `generation`."""
        if entry is None:
            return None
        decoded = self._decoded.get(entry)
        if decoded is None:
            try:
                data = orjson.loads(entry)
                # Entries of hubs before local copies carry no time: as old as they may be.
                written = float(data.get("at", time.time() - self._ttl / 2))
                decoded = (data["gen"], permit_from_wire(data["permit"]), written)
            except (ValueError, KeyError, TypeError, AttributeError):
                return None  # an entry from another version of the hub: read through
            if len(self._decoded) >= self._decoded_entries:
                del self._decoded[next(iter(self._decoded))]  # the oldest
            self._decoded[entry] = decoded
        entry_generation, permit, written = decoded
        return (permit, written) if entry_generation == generation else None

    async def _store(
        self, fetched: Mapping[str, Permit], generations: Mapping[str, int], written: float
    ) -> None:
        items = {
            self._entry(number): orjson.dumps(
                {"gen": generations[number], "permit": permit_to_wire(permit), "at": written}
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
        generations = []
        for number in numbers:
            generation = await self._kv.incr(
                self._generation(number), 1, ttl_seconds=self._generation_ttl
            )
            self._forget(number, generation)
            generations.append(b"%d" % generation)
        await self._kv.delete(*(self._entry(n) for n in numbers))
        if self._shared is not None:  # the other instances' copies
            await self._shared.append(INVALIDATED, {
                "permits": " ".join(numbers).encode(), "generations": b" ".join(generations),
            })

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
        self,
        cache: CachedPermitSource,
        read: dict[str, tuple[bytes | None, bytes | None]],
        *,
        local: Sequence[str] = (),
    ) -> None:
        self._cache = cache
        self._read = read
        self._local = local  # permits none of whose entries were read: their local copies

    def all_hits(self) -> dict[str, Permit]:
        """The permits read ahead (or copied locally), if every one was a hit (else none).

        A request whose permits are all in the cache can then be answered without loading
        them: no DataLoader batch, no task. Those taken are no longer served by `permits`.
        """
        if self._local:
            found = self._cache.copies(self._local)
            if found:
                self._cache.stats.hits += len(found)
            return found or {}
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
