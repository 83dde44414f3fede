"""The load generator: HTTP/1.1 keep-alive connections on uvloop, in a process of its own.

    python -m bench._load SPEC.json RESULT.json

Each connection is an `asyncio.Protocol` with the C parser of `httptools` (what uvicorn uses):
no per-request client object, no header dictionaries, the request bytes built once up front.
That keeps the generator far below the servers it drives (`python -m bench --only ceiling`
measures how far: the same generator against a server that does nothing).

Closed loop (no `rate`): every connection sends its next request as soon as the last one is
answered, which measures the peak. Open loop (`rate` requests per second): request i is due at
`start + i / rate`, and its latency counts from that moment, not from when a connection was
free to send it, so a server that falls behind shows its queue in the percentiles instead of
silently slowing the generator down (no coordinated omission).

Only requests *started* inside the measured window (after `warmup`) are counted. An error is a
failed connection, a status other than 200, or a 200 whose body carries `error_marker`.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httptools
import uvloop


@dataclass(frozen=True)
class Spec:
    host: str
    port: int
    bodies: list[str]
    path: str = "/graphql"
    headers: dict[str, str] = field(default_factory=dict)
    connections: int = 32
    duration: float = 5.0
    warmup: float = 1.0
    rate: float | None = None  # open loop, requests per second (this process)
    once: bool = False  # each body is sent once; the run ends when they are used up
    error_marker: str | None = '"errors"'
    grace: float = 10.0  # how long in-flight requests may finish after the window

    @classmethod
    def load(cls, path: str) -> Spec:
        return cls(**json.loads(Path(path).read_text()))


def _requests(spec: Spec) -> list[bytes]:
    head = f"POST {spec.path} HTTP/1.1\r\nHost: {spec.host}:{spec.port}\r\n"
    head += "Content-Type: application/json\r\nAccept: application/json\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in spec.headers.items())
    built = []
    for text in spec.bodies:
        body = text.encode()
        built.append((head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body)
    return built


class _Connection(asyncio.Protocol):
    """One keep-alive connection; at most one request in flight (no pipelining)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._parser = httptools.HttpResponseParser(self)
        self._transport: asyncio.Transport | None = None
        self._waiter: asyncio.Future[tuple[int, bytes, bool]] | None = None
        self._chunks: list[bytes] = []
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # uvloop's is no asyncio.Transport

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ConnectionError(f"bad response: {exc}"))
            self.close()

    def on_body(self, body: bytes) -> None:
        self._chunks.append(body)

    def on_message_complete(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            status = self._parser.get_status_code()
            waiter.set_result((status, b"".join(self._chunks), self._parser.should_keep_alive()))

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self._fail(ConnectionError(f"connection lost: {exc or 'closed by the server'}"))

    def _fail(self, exc: Exception) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    def send(self, data: bytes) -> asyncio.Future[tuple[int, bytes, bool]]:
        assert self._transport is not None
        self._chunks = []
        self._waiter = self._loop.create_future()
        self._transport.write(data)
        return self._waiter

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


class _Run:
    def __init__(self, spec: Spec, loop: asyncio.AbstractEventLoop) -> None:
        self.spec = spec
        self.loop = loop
        self.requests = _requests(spec)
        self.marker = spec.error_marker.encode() if spec.error_marker else None
        self.start = time.perf_counter()
        self.window_start = self.start + spec.warmup
        self.end = self.window_start + spec.duration
        self.next_index = 0
        self.exhausted_at: float | None = None
        self.latencies: list[float] = []
        self.statuses: Counter[str] = Counter()
        self.errors = 0
        self.error_sample: str | None = None
        self.last_done = self.window_start
        self.cpu: list[float] = []

    def next_slot(self) -> tuple[float | None, bytes] | None:
        """(due time or None for "now", request bytes), or None when the run is over."""
        index = self.next_index
        if self.spec.once and index >= len(self.requests):
            if self.exhausted_at is None:
                self.exhausted_at = time.perf_counter()
            return None
        due = None
        if self.spec.rate:
            due = self.start + index / self.spec.rate
            if due >= self.end:
                return None
        elif time.perf_counter() >= self.end:
            return None
        self.next_index = index + 1
        return due, self.requests[index % len(self.requests)]

    def record(self, started: float, done: float, status: str, body: bytes | None) -> None:
        if not self.window_start <= started < self.end:
            return
        self.last_done = max(self.last_done, done)
        self.latencies.append(done - started)
        self.statuses[status] += 1
        marked = self.marker is not None and body is not None and self.marker in body
        if status != "200" or marked:
            self.errors += 1
            if self.error_sample is None:
                self.error_sample = f"{status}: {(body or b'')[:300].decode('utf-8', 'replace')}"

    async def connect(self) -> _Connection:
        _, conn = await self.loop.create_connection(
            lambda: _Connection(self.loop), self.spec.host, self.spec.port
        )
        return conn

    async def worker(self) -> None:
        conn: _Connection | None = None
        try:
            while (slot := self.next_slot()) is not None:
                due, data = slot
                if due is not None:
                    delay = due - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                started = due if due is not None else time.perf_counter()
                try:
                    if conn is None or conn.lost:
                        conn = await self.connect()
                    status, body, keep_alive = await conn.send(data)
                except (OSError, ConnectionError) as exc:
                    self.record(started, time.perf_counter(), type(exc).__name__, str(exc).encode())
                    conn = None
                    await asyncio.sleep(0.01)  # a refused connection must not spin
                    continue
                self.record(started, time.perf_counter(), str(status), body)
                if not keep_alive:
                    conn.close()
                    conn = None
        finally:
            if conn is not None:
                conn.close()

    def snapshot_cpu(self) -> None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        self.cpu.append(usage.ru_utime + usage.ru_stime)

    async def run(self) -> dict[str, Any]:
        self.loop.call_at(self.loop.time() + self.spec.warmup, self.snapshot_cpu)
        workers = [asyncio.ensure_future(self.worker()) for _ in range(self.spec.connections)]
        # Until the window closes, or sooner if a `once` run has used up its bodies.
        await asyncio.wait(workers, timeout=max(0.0, self.end - time.perf_counter()))
        self.snapshot_cpu()
        _, pending = await asyncio.wait(workers, timeout=self.spec.grace)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)
        return self.result(unfinished=len(pending))

    def result(self, unfinished: int) -> dict[str, Any]:
        ended = self.end
        if self.exhausted_at is not None and self.exhausted_at < self.end:
            ended = self.last_done
        seconds = max(ended - self.window_start, 1e-9)
        cpu = self.cpu[1] - self.cpu[0] if len(self.cpu) == 2 else 0.0
        return {
            "requests": len(self.latencies),
            "seconds": seconds,
            "errors": self.errors + unfinished,
            "unfinished": unfinished,
            "statuses": dict(self.statuses),
            "error_sample": self.error_sample,
            "cpu_seconds": cpu,
            "window_seconds": self.spec.duration,
            "latencies_us": [round(x * 1e6) for x in self.latencies],
        }


async def _main(spec: Spec) -> dict[str, Any]:
    return await _Run(spec, asyncio.get_running_loop()).run()


def main() -> None:
    spec = Spec.load(sys.argv[1])
    result = uvloop.run(_main(spec))
    Path(sys.argv[2]).write_text(json.dumps(result))


if __name__ == "__main__":
    main()
