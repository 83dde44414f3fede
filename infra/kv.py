"""Shared key-value store: Redis in production, an in-process twin for the embedded mode.

Used for the connector cache, rate-limit buckets and the shared-state stream (revocations,
disabled clients and permit events, `infra.shared_state`). Both implementations behave the same
(one contract suite runs against each); keys are namespaced by a prefix so that tests and
several deployments can share one Redis.

A stream is an append-only log of entries, each with an id (`<ms>-<seq>`, increasing) and a
few fields: Redis Streams (XADD with approximate MAXLEN trimming, XREAD BLOCK, XINFO STREAM),
or a list in the process. `stream_state` tells a reader coming back after an outage whether it
can resume from its last id: the store's `epoch` changes when it restarts (Redis's run id), and
`trimmed_to` is the highest id trimmed away.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import redis.asyncio as redis_async
from redis.exceptions import RedisError, ResponseError

__all__ = [
    "NO_ID",
    "Count",
    "KeyValue",
    "KeyValueUnavailable",
    "MemoryKeyValue",
    "RedisKeyValue",
    "StreamEntry",
    "StreamState",
    "open_key_value",
    "stream_id",
]

#: The id before every entry: a reader that has read nothing reads from here.
NO_ID = "0-0"

#: One stream entry: its id and its fields.
StreamEntry = tuple[str, dict[str, bytes]]


def stream_id(text: str) -> tuple[int, int]:
    """`<ms>-<seq>` as a pair that compares as the store orders ids."""
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


def _text_id(key: tuple[int, int]) -> str:
    return f"{key[0]}-{key[1]}"


def _before(entry_id: str) -> str:
    ms, seq = stream_id(entry_id)
    return f"{ms}-{seq - 1}" if seq else f"{ms - 1}-{2**64 - 1}"


@dataclass(frozen=True, slots=True)
class StreamState:
    """Where a stream stands, for a reader deciding whether it may resume from its last id.

    `epoch`: the store's lifetime (another one after a restart, which may have lost entries);
    `last_id`: the last id the stream gave (`NO_ID`: none, or no such stream); `trimmed_to`:
    the highest id trimmed away (`NO_ID`: none), so a reader whose last id is below it missed
    entries.
    """

    epoch: str
    last_id: str
    trimmed_to: str


class KeyValueUnavailable(Exception):
    """The store could not be reached; callers decide whether to fail open or closed."""


@dataclass(frozen=True, slots=True)
class Count:
    """Add `amount` to the counter `key`; a counter created by it expires after `ttl_seconds`."""

    key: str
    amount: int
    ttl_seconds: float


class KeyValue(Protocol):
    async def get(self, key: str) -> bytes | None: ...
    async def get_many(self, keys: list[str]) -> list[bytes | None]: ...
    async def set(self, key: str, value: bytes, ttl_seconds: float | None = None) -> None: ...
    async def set_many(self, items: Mapping[str, bytes], ttl_seconds: float) -> None: ...
    async def delete(self, *keys: str) -> None: ...
    async def incr(self, key: str, amount: int = 1, ttl_seconds: float | None = None) -> int: ...
    async def incr_many(
        self, counts: Sequence[Count], reads: Sequence[str] = ()
    ) -> tuple[list[int], list[bytes | None]]: ...
    async def read_and_count(
        self, reads: Sequence[str], counts: Sequence[Count]
    ) -> tuple[list[bytes | None], list[int]]: ...
    async def append(self, stream: str, fields: Mapping[str, bytes], max_len: int) -> str:
        """Add an entry; the stream keeps about its last `max_len` (at least that many)."""
        ...

    async def read_stream(
        self, stream: str, after: str, block_seconds: float, count: int
    ) -> list[StreamEntry]:
        """At most `count` entries after the id `after`, waiting up to `block_seconds` for one."""
        ...

    async def stream_state(self, stream: str) -> StreamState: ...
    async def ping(self) -> bool: ...
    async def close(self) -> None: ...

    @property
    def shared(self) -> bool:
        """Whether other processes see the same data (Redis), or only this one (in-process)."""
        ...


class _MemoryStream:
    def __init__(self) -> None:
        self.entries: list[tuple[tuple[int, int], dict[str, bytes]]] = []
        self.last = (0, 0)
        self.trimmed_to = (0, 0)
        self.readers: set[asyncio.Future[None]] = set()  # blocked reads, woken by an append


class MemoryKeyValue:
    """In-process store with expiry; one per hub process, so only for the embedded mode.

    `clock` (monotonic seconds) decides expiry: tests advance it instead of waiting out a TTL.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._data: dict[str, tuple[bytes, float | None]] = {}
        self._streams: dict[str, _MemoryStream] = {}
        self._epoch = uuid.uuid4().hex
        self._lock = asyncio.Lock()
        self._clock = clock

    def _live(self, key: str) -> bytes | None:
        item = self._data.get(key)
        if item is None:
            return None
        value, expires = item
        if expires is not None and expires <= self._clock():
            del self._data[key]
            return None
        return value

    async def get(self, key: str) -> bytes | None:
        return self._live(key)

    async def get_many(self, keys: list[str]) -> list[bytes | None]:
        return [self._live(k) for k in keys]

    async def set(self, key: str, value: bytes, ttl_seconds: float | None = None) -> None:
        expires = self._clock() + ttl_seconds if ttl_seconds else None
        self._data[key] = (value, expires)

    async def set_many(self, items: Mapping[str, bytes], ttl_seconds: float) -> None:
        expires = self._clock() + ttl_seconds
        for key, value in items.items():
            self._data[key] = (value, expires)

    async def delete(self, *keys: str) -> None:
        for key in keys:
            self._data.pop(key, None)

    async def incr(self, key: str, amount: int = 1, ttl_seconds: float | None = None) -> int:
        current = self._live(key)
        value = int(current or b"0") + amount
        expires = self._data[key][1] if current is not None else None
        if current is None and ttl_seconds:
            expires = self._clock() + ttl_seconds
        self._data[key] = (str(value).encode(), expires)
        return value

    async def incr_many(
        self, counts: Sequence[Count], reads: Sequence[str] = ()
    ) -> tuple[list[int], list[bytes | None]]:
        totals = [await self.incr(c.key, c.amount, c.ttl_seconds) for c in counts]
        return totals, [self._live(k) for k in reads]

    async def read_and_count(
        self, reads: Sequence[str], counts: Sequence[Count]
    ) -> tuple[list[bytes | None], list[int]]:
        values = [self._live(k) for k in reads]
        return values, [await self.incr(c.key, c.amount, c.ttl_seconds) for c in counts]

    def _stream(self, name: str) -> _MemoryStream:
        stream = self._streams.get(name)
        if stream is None:
            stream = self._streams[name] = _MemoryStream()
        return stream

    async def append(self, stream: str, fields: Mapping[str, bytes], max_len: int) -> str:
        log = self._stream(stream)
        ms = int(time.time() * 1000)
        log.last = (ms, 0) if ms > log.last[0] else (log.last[0], log.last[1] + 1)
        log.entries.append((log.last, dict(fields)))
        if len(log.entries) > max_len:
            gone = len(log.entries) - max_len
            log.trimmed_to = log.entries[gone - 1][0]
            del log.entries[:gone]
        for reader in log.readers:
            if not reader.done():
                reader.set_result(None)
        return _text_id(log.last)

    async def read_stream(
        self, stream: str, after: str, block_seconds: float, count: int
    ) -> list[StreamEntry]:
        log = self._stream(stream)
        start = stream_id(after)
        if log.last <= start and block_seconds > 0:
            appended = asyncio.get_running_loop().create_future()
            log.readers.add(appended)
            try:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(block_seconds):
                        await appended
            finally:
                log.readers.discard(appended)
        newer = (e for e in log.entries if e[0] > start)
        return [(_text_id(key), dict(fields)) for key, fields in itertools.islice(newer, count)]

    async def stream_state(self, stream: str) -> StreamState:
        log = self._streams.get(stream) or _MemoryStream()
        return StreamState(self._epoch, _text_id(log.last), _text_id(log.trimmed_to))

    async def ping(self) -> bool:
        return True

    @property
    def shared(self) -> bool:
        return False

    async def close(self) -> None:
        self._data.clear()
        self._streams.clear()


# One call's KEYS are the keys it reads, then its counters; its ARGV are how many keys it reads,
# how many counters, then an amount and a TTL in ms per counter. The script takes the calls of
# one batch in turn (ARGV[1] is how many, then each call's ARGV; KEYS are all the calls' keys in
# order) and returns, per call, the values it read followed by its counters' new values. One
# script, so one round trip and one reply for the shared checks of every request in the batch;
# and atomic, so a counter never exists without its expiry. Each call's effects are those of the
# call alone: its reads, then its counts. The reads go 1,000 keys per MGET: Lua's `unpack` stops
# at about 8,000 values, and a page of permits brings two keys each.
_READ_AND_COUNT = """
local calls = tonumber(ARGV[1])
local replies = {}
local key, arg = 0, 2
for call = 1, calls do
  local reads, counts = tonumber(ARGV[arg]), tonumber(ARGV[arg + 1])
  arg = arg + 2
  local out = {}
  for first = key + 1, key + reads, 1000 do
    local part = redis.call('MGET', unpack(KEYS, first, math.min(first + 999, key + reads)))
    for j = 1, #part do out[#out + 1] = part[j] end
  end
  key = key + reads
  for _ = 1, counts do
    key = key + 1
    local amount = tonumber(ARGV[arg])
    local value = redis.call('INCRBY', KEYS[key], amount)
    if value == amount then redis.call('PEXPIRE', KEYS[key], ARGV[arg + 1]) end
    out[#out + 1] = value
    arg = arg + 2
  end
  replies[call] = out
end
return replies
"""

# A batch is at most this many calls or keys (a call with more keys goes alone): the script
# holds Redis while it runs, and a flush with more queued sends several batches at once.
BATCH_CALLS = 64
BATCH_KEYS = 4_000

_Reply = list[bytes | int | None]


@dataclass(slots=True)
class _Queued:
    """One `read_and_count` call waiting for its batch: its keys, its ARGV, its reply."""

    keys: list[bytes]
    args: list[bytes]
    reply: asyncio.Future[_Reply]


class RedisKeyValue:
    """Redis-backed store; every key carries `prefix`. Errors become KeyValueUnavailable."""

    def __init__(
        self, client: redis_async.Redis, prefix: str = "hub:", timeout_seconds: float = 1.0
    ) -> None:
        self._redis = client
        self._prefix = prefix
        self._timeout = timeout_seconds
        self._read_and_count = client.register_script(_READ_AND_COUNT)
        self._queued: list[_Queued] = []  # `read_and_count` calls the next flush sends
        self._deadline = 0.0  # of the queued calls: the first one's
        self._sending: set[asyncio.Task[None]] = set()

    @asynccontextmanager
    async def _call(self, deadline: float | None = None) -> AsyncIterator[None]:
        """Each operation within the deadline, and every failure as `KeyValueUnavailable`.

        The deadline is ours rather than redis-py's socket timeout: with one set, redis-py
        sends every command through `asyncio.wait_for`, a task per command on Python 3.11.
        It is `timeout_seconds` from now, or `deadline` (loop time) if given.
        """
        try:
            if deadline is None:
                deadline = asyncio.get_running_loop().time() + self._timeout
            async with asyncio.timeout_at(deadline):
                yield
        except (RedisError, OSError, TimeoutError) as exc:
            raise KeyValueUnavailable(str(exc) or type(exc).__name__) from None

    @property
    def client(self) -> redis_async.Redis:
        return self._redis

    @property
    def prefix(self) -> str:
        return self._prefix

    async def get(self, key: str) -> bytes | None:
        async with self._call():
            value: bytes | None = await self._redis.get(self._prefix + key)  # type: ignore[assignment]
        return value

    async def get_many(self, keys: list[str]) -> list[bytes | None]:
        if not keys:
            return []
        async with self._call():
            values: list[bytes | None] = await self._redis.mget(  # type: ignore[assignment]
                [self._prefix + k for k in keys]
            )
        return values

    async def set(self, key: str, value: bytes, ttl_seconds: float | None = None) -> None:
        async with self._call():
            if ttl_seconds:
                await self._redis.set(self._prefix + key, value, px=int(ttl_seconds * 1000))
            else:
                await self._redis.set(self._prefix + key, value)

    async def set_many(self, items: Mapping[str, bytes], ttl_seconds: float) -> None:
        if not items:
            return
        async with self._call(), self._redis.pipeline(transaction=False) as pipe:
            for key, value in items.items():
                pipe.set(self._prefix + key, value, px=int(ttl_seconds * 1000))
            await pipe.execute()

    async def delete(self, *keys: str) -> None:
        if not keys:
            return
        async with self._call():
            await self._redis.delete(*(self._prefix + k for k in keys))

    async def incr(self, key: str, amount: int = 1, ttl_seconds: float | None = None) -> int:
        full = self._prefix + key
        async with self._call(), self._redis.pipeline(transaction=True) as pipe:
            pipe.incrby(full, amount)
            if ttl_seconds:
                pipe.pexpire(full, int(ttl_seconds * 1000), nx=True)
            result = await pipe.execute()
        return int(result[0])

    async def incr_many(
        self, counts: Sequence[Count], reads: Sequence[str] = ()
    ) -> tuple[list[int], list[bytes | None]]:
        """INCRBY of each count and MGET of `reads`, in one MULTI/EXEC (one round trip).

        The counts' new totals, then the values read: `infra.counters` sends what a process
        counted and learns the totals of the others with it. Atomic, so a counter never exists
        without its expiry.
        """
        if not counts and not reads:
            return [], []
        async with self._call(), self._redis.pipeline(transaction=True) as pipe:
            for count in counts:
                full = self._prefix + count.key
                pipe.incrby(full, count.amount)
                pipe.pexpire(full, max(1, int(count.ttl_seconds * 1000)), nx=True)
            if reads:
                pipe.mget([self._prefix + k for k in reads])
            result = await pipe.execute()
        totals = [int(v) for v in result[: 2 * len(counts) : 2]]
        return totals, (list(result[-1]) if reads else [])

    async def read_and_count(
        self, reads: Sequence[str], counts: Sequence[Count]
    ) -> tuple[list[bytes | None], list[int]]:
        """MGET of `reads` and INCRBY of each count, in one round trip (a cached Lua script).

        Calls made before the event loop next runs its callbacks share that round trip: they
        are queued, and `_flush` sends them as one script call with the effects of each alone.
        """
        if not reads and not counts:
            return [], []
        # Bytes from here on: redis-py's encoder would otherwise check the type of every key
        # and number of every call (five isinstance calls each) before packing them.
        prefix = self._prefix
        keys = [(prefix + k).encode() for k in reads]
        keys += [(prefix + c.key).encode() for c in counts]
        args = [b"%d" % len(reads), b"%d" % len(counts)]
        for count in counts:
            args += [b"%d" % count.amount, b"%d" % max(1, int(count.ttl_seconds * 1000))]
        out = await self._queue(keys, args)
        values = [v if isinstance(v, bytes) else None for v in out[: len(reads)]]
        return values, [int(v or 0) for v in out[len(reads) :]]

    def _queue(self, keys: list[bytes], args: list[bytes]) -> asyncio.Future[_Reply]:
        loop = asyncio.get_running_loop()
        if not self._queued:
            self._deadline = loop.time() + self._timeout  # no waiter waits longer than this
            loop.call_soon(self._flush)
        call = _Queued(keys, args, loop.create_future())
        self._queued.append(call)
        return call.reply

    def _flush(self) -> None:
        """Send the queued calls: a batch per script call, the batches all at once."""
        queued, self._queued = self._queued, []
        batch: list[_Queued] = []
        size = 0
        for call in queued:
            if call.reply.done():  # its waiter was cancelled before it was sent
                continue
            if batch and (len(batch) == BATCH_CALLS or size + len(call.keys) > BATCH_KEYS):
                self._send_soon(batch)
                batch, size = [], 0
            batch.append(call)
            size += len(call.keys)
        if batch:
            self._send_soon(batch)

    def _send_soon(self, batch: list[_Queued]) -> None:
        task = asyncio.get_running_loop().create_task(self._send(batch, self._deadline))
        self._sending.add(task)  # the loop keeps only a weak reference
        task.add_done_callback(self._sending.discard)

    async def _send(self, batch: list[_Queued], deadline: float) -> None:
        """One script call for `batch`; every waiter gets its reply or `KeyValueUnavailable`.

        A task of its own rather than run by one of the waiters: a waiter cancelled meanwhile
        then cancels only its own wait, and the script call runs on to its reply (or to the
        deadline), so the others get theirs and nothing is left unread on the connection.
        """
        failure = "no reply"
        try:
            keys = [key for call in batch for key in call.keys]
            args = [b"%d" % len(batch)]
            for call in batch:
                args += call.args
            async with self._call(deadline):
                replies: list[_Reply] = await self._read_and_count(keys=keys, args=args)
            for call, reply in zip(batch, replies, strict=True):
                if not call.reply.done():
                    call.reply.set_result(reply)
        except KeyValueUnavailable as exc:
            failure = str(exc)
        finally:
            for call in batch:
                if not call.reply.done():
                    call.reply.set_exception(KeyValueUnavailable(failure))

    async def append(self, stream: str, fields: Mapping[str, bytes], max_len: int) -> str:
        entry: dict[Any, Any] = dict(fields)
        async with self._call():
            added = await self._redis.xadd(
                self._prefix + stream, entry, maxlen=max_len, approximate=True
            )
        return added.decode() if isinstance(added, bytes) else str(added)

    async def read_stream(
        self, stream: str, after: str, block_seconds: float, count: int
    ) -> list[StreamEntry]:
        """XREAD BLOCK on a pooled connection, held for the wait (one per reader)."""
        deadline = asyncio.get_running_loop().time() + block_seconds + self._timeout
        key = self._prefix + stream
        async with self._call(deadline):
            reply: list[Any] = await self._redis.xread(  # type: ignore[assignment]
                {key: after}, count=count, block=max(1, int(block_seconds * 1000))
            )
        entries: list[StreamEntry] = []
        for _, items in reply or []:
            for entry_id, fields in items:
                entries.append((
                    entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id),
                    {(k.decode() if isinstance(k, bytes) else str(k)): v
                     for k, v in fields.items()},
                ))
        return entries

    async def stream_state(self, stream: str) -> StreamState:
        """INFO's run id and XINFO STREAM. Trimming is not recorded as such (Redis 7's
        `max-deleted-entry-id` counts XDEL only): when the stream added more entries than it
        holds, everything before its first entry counts as trimmed; Redis before 7 does not say
        how many it added, so there it always does (a reader may reload for nothing, never miss
        a gap)."""
        async with self._call():
            server = await self._redis.info("server")
            try:
                info = await self._redis.xinfo_stream(self._prefix + stream)
            except ResponseError:  # no such stream (yet, or any more)
                return StreamState(str(server["run_id"]), NO_ID, NO_ID)

        def text(value: object) -> str:
            return value.decode() if isinstance(value, bytes) else str(value)

        last = text(info["last-generated-id"])
        first = info.get("first-entry")
        added = info.get("entries-added")
        if added is not None and int(added) <= int(info["length"]):
            trimmed = text(info.get("max-deleted-entry-id") or NO_ID)
        elif first:
            trimmed = _before(text(first[0]))
        else:
            trimmed = last  # everything trimmed
        return StreamState(str(server["run_id"]), last, trimmed)

    @property
    def shared(self) -> bool:
        return True

    async def ping(self) -> bool:
        try:
            async with self._call():
                return bool(await self._redis.ping())
        except KeyValueUnavailable:
            return False

    async def close(self) -> None:
        await asyncio.gather(*self._sending, return_exceptions=True)
        await self._redis.aclose()


REDIS_CONNECTIONS = 16  # per process: one connection carries thousands of commands a second


def open_key_value(url: str | None, prefix: str = "hub:") -> KeyValue:
    """`None` gives the in-process store; a `redis://` URL gives the shared one."""
    if not url:
        return MemoryKeyValue()
    # A bounded pool, waited on when busy: a burst of requests reuses a few open connections
    # instead of opening one each at once (a connect storm timed out under load).
    # No socket timeout: `RedisKeyValue` holds each operation to its own deadline (which also
    # covers waiting for a connection and opening one), without a task per command.
    pool = redis_async.BlockingConnectionPool.from_url(
        url,
        max_connections=REDIS_CONNECTIONS,
        timeout=2.0,
        socket_connect_timeout=2.0,
        socket_timeout=None,  # redis-py's default is 5 s
    )
    return RedisKeyValue(redis_async.Redis.from_pool(pool), prefix, timeout_seconds=3.0)
