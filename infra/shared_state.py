"""The shared-state stream, and this process's replica of what it carries.

What every hub instance must learn from the others (a token revoked, a client disabled or
changed, a permit changed) is an entry of one stream per deployment prefix, `shared-state`
(Redis Streams; the in-process twin in the embedded mode). Each process runs one reader, this
`SharedState`: handlers registered per kind of entry keep local copies (the denylist, the event
bus's subscribers, the webhook worker's wake-up), so the hot path asks nothing of Redis.

The reader:

- at start, notes where the stream stands, then runs the reset handlers (the denylist loads
  from the hub database, caches start empty), then reads every entry after the noted id: an
  entry written meanwhile is applied twice, which handlers must take (they set, not toggle);
- reads with XREAD BLOCK of `block_seconds`: every reply, empty or not, is contact, so
  `staleness` (seconds since the last read that was sent and answered) stays below about twice
  that while Redis answers;
- after a failure, resumes from its last id once Redis answers; if entries after that id were
  trimmed, or Redis restarted (its run id changed) or went back, it cannot know what it missed:
  it runs the reset handlers again (reload from the record, drop caches) and goes on from
  where the stream stands;
- reloads anyway every `SAFETY_RELOAD_SECONDS`, which bounds what an entry that never reached
  the stream (its writer died before Redis came back) can cost.

A writer changes the record (the hub database) first, applies the change locally, then
`publish`es it; an entry the store does not take is kept and appended once it answers again.

Never: put a token or a secret in an entry (revocations travel as hashes).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping

from infra.kv import NO_ID, KeyValue, KeyValueUnavailable, StreamState, stream_id

__all__ = ["STREAM", "SharedState"]

log = logging.getLogger("infra.shared_state")

STREAM = "shared-state"
MAX_LEN = 10_000  # entries kept (about): minutes of history at the busiest, days at rest
BLOCK_SECONDS = 0.3
BATCH = 500
SAFETY_RELOAD_SECONDS = 300.0
_RETRY_SECONDS = (0.1, 1.0)  # first and longest wait after a failure
_CLOSE_GRACE_SECONDS = 2.0  # beyond the block time, for the reader to end at close

Handler = Callable[[Mapping[str, bytes]], Awaitable[None] | None]
Reset = Callable[[], Awaitable[None]]


class SharedState:
    """One reader of the shared-state stream per process; see the module docstring.

    `max_staleness` matters only with a shared store: the in-process one is never out of reach,
    so its replica is never stale.
    """

    def __init__(
        self,
        kv: KeyValue,
        max_staleness: float = 3.0,
        *,
        block_seconds: float = BLOCK_SECONDS,
        max_len: int = MAX_LEN,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._kv = kv
        self.max_staleness = max_staleness
        self._block = block_seconds
        self._max_len = max_len
        self._clock = clock
        self._handlers: dict[str, list[Handler]] = {}
        self._resets: list[Reset] = []
        self._last = NO_ID
        self._epoch: str | None = None
        self._contact = -math.inf
        self._synced = False
        self._reloaded = -math.inf
        self._pending: list[dict[str, bytes]] = []
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.resets = 0  # how many times the replica was rebuilt from the record

    # -- wiring ------------------------------------------------------------------------------------

    def on(self, kind: str, handler: Handler) -> None:
        """Call `handler(fields)` for each entry of `kind` (sync or async), in stream order."""
        self._handlers.setdefault(kind, []).append(handler)

    def on_reset(self, reset: Reset) -> None:
        """Called at start and whenever the replica cannot know what it missed: reload from
        the record, drop caches. May raise: the reader then tries again."""
        self._resets.append(reset)

    async def start(self) -> None:
        """Load, note the stream's position, and start reading (once; later calls do nothing).

        With the store out of reach the replica still loads from the record, then stays stale
        until the store answers."""
        if self._task is not None:
            return
        try:
            await self._resync()
        except KeyValueUnavailable as exc:
            log.warning("shared-state stream unavailable at start (%s); the replica is stale "
                        "until it answers", exc)
            await self._reset()
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name="shared-state-reader"
        )

    async def close(self) -> None:
        """Stop reading: the reader ends after its current read (a blocked XREAD returns within
        the block time), and is cancelled only if it has not by then. Cancelling redis-py in
        the middle of a blocking read can leave the task waiting on its connection for good,
        and a hub that cannot stop is worse than one read too many."""
        if self._task is not None:
            self._closing = True
            task, self._task = self._task, None
            await asyncio.wait({task}, timeout=self._block + _CLOSE_GRACE_SECONDS)
            if not task.done():
                task.cancel()
                await asyncio.wait({task}, timeout=_CLOSE_GRACE_SECONDS)
            failure = task.exception() if task.done() and not task.cancelled() else None
            if isinstance(failure, Exception):
                log.warning("shared-state reader ended with %s", _brief(failure))
        if self._pending:
            with contextlib.suppress(KeyValueUnavailable):
                await self._flush()
        if self._pending:
            log.error("%d shared-state entries never reached the stream; the other instances "
                      "learn them at their next reload from the hub database", len(self._pending))

    # -- freshness ---------------------------------------------------------------------------------

    @property
    def staleness(self) -> float:
        """Seconds since the last read of the stream was sent that the store answered."""
        if not self._kv.shared:
            return 0.0
        return self._clock() - self._contact

    def fresh(self) -> bool:
        return self.staleness <= self.max_staleness

    @property
    def last_id(self) -> str:
        return self._last

    # -- writing -----------------------------------------------------------------------------------

    async def publish(self, kind: str, fields: Mapping[str, bytes]) -> None:
        """Append an entry for the other instances (the caller has applied it here already).

        Never raises: an entry the store does not take now is appended once it answers.
        """
        entry = {"kind": kind.encode(), **fields}
        try:
            await self._flush()
            await self._kv.append(STREAM, entry, self._max_len)
        except KeyValueUnavailable as exc:
            log.warning("shared-state entry %s not appended (%s); appending it once the store "
                        "answers", kind, exc)
            self._pending.append(entry)

    async def append(self, kind: str, fields: Mapping[str, bytes]) -> None:
        """Append an entry now, or raise `KeyValueUnavailable` (for a caller that must refuse
        what it cannot pass on, rather than have it appended later)."""
        await self._kv.append(STREAM, {"kind": kind.encode(), **fields}, self._max_len)

    async def _flush(self) -> None:
        while self._pending:
            await self._kv.append(STREAM, self._pending[0], self._max_len)
            self._pending.pop(0)

    # -- reading -----------------------------------------------------------------------------------

    async def _run(self) -> None:
        wait = _RETRY_SECONDS[0]
        failing = False
        while not self._closing:
            try:
                await self.read_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the store or the record is down: keep the reader alive
                self._synced = False
                if not failing:
                    log.warning("shared-state stream unreadable (%s); retrying", _brief(exc))
                failing = True
                if self._closing:
                    return
                await asyncio.sleep(wait)
                wait = min(wait * 2, _RETRY_SECONDS[1])
                continue
            if failing:
                log.info("shared-state stream readable again, from %s", self._last)
            failing, wait = False, _RETRY_SECONDS[0]

    async def read_once(self) -> int:
        """One read of the stream (resynchronising first if needed); how many entries came."""
        if not self._synced:
            await self._resume()
        elif self._clock() - self._reloaded > SAFETY_RELOAD_SECONDS:
            await self._safety_reload()
        await self._flush()
        sent = self._clock()
        entries = await self._kv.read_stream(STREAM, self._last, self._block, BATCH)
        for entry_id, fields in entries:
            await self._apply(fields)
            self._last = entry_id
        self._contact = sent
        if len(entries) == BATCH:
            self._synced = False  # far behind: make sure nothing was trimmed under us
        return len(entries)

    async def _resume(self) -> None:
        sent = self._clock()
        state = await self._kv.stream_state(STREAM)
        if self._missed(state):
            log.warning("shared-state stream lost entries after %s (store restarted or "
                        "trimmed); reloading from the hub database", self._last)
            await self._resync(state, sent)
        self._synced = True

    def _missed(self, state: StreamState) -> bool:
        if state.epoch != self._epoch:
            return True
        last = stream_id(self._last)
        return stream_id(state.last_id) < last or stream_id(state.trimmed_to) > last

    async def _resync(self, state: StreamState | None = None, sent: float | None = None) -> None:
        """Where the stream stands, then the reset: whatever comes after is read on top. The
        replica is then as current as the record, so as fresh as that look at the stream."""
        if state is None or sent is None:
            sent = self._clock()
            state = await self._kv.stream_state(STREAM)
        await self._reset()
        self._last, self._epoch = state.last_id, state.epoch
        self._contact = max(self._contact, sent)
        self._synced = True

    async def _safety_reload(self) -> None:
        """The periodic reload; its failure (the record down) leaves the replica as current as
        the stream keeps it, and is tried again shortly."""
        try:
            await self._reset()
        except Exception as exc:
            log.warning("periodic reload of the replica failed (%s); retrying", _brief(exc))
            self._reloaded = self._clock() - SAFETY_RELOAD_SECONDS + 10.0

    async def _reset(self) -> None:
        for reset in self._resets:
            await reset()
        self._reloaded = self._clock()
        self.resets += 1

    async def _apply(self, fields: Mapping[str, bytes]) -> None:
        kind = fields.get("kind", b"").decode(errors="replace")
        for handler in self._handlers.get(kind, ()):
            try:
                done = handler(fields)
                if inspect.isawaitable(done):
                    await done
            except Exception:  # one bad entry or handler must not stop the replica
                log.exception("shared-state handler for %s failed", kind)


def _brief(exc: Exception) -> str:
    return str(exc) or type(exc).__name__
