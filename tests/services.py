"""Real backing services for tests: a fresh database per use, a private Redis prefix.

Without `HUB_TEST_DATABASE_URL` / `HUB_TEST_REDIS_URL` everything runs on SQLite files and the
in-process store, so a newcomer's laptop is green; CI sets both and runs on the real services.
Every database and key created here is removed afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sqlite3
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypedDict

import asyncpg
import redis.asyncio as redis_async
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy.engine import make_url

from infra.kv import KeyValue, MemoryKeyValue, RedisKeyValue


# argon2id at its lowest cost for client secrets: every hub a test starts registers seven
# clients, and at the production cost (about 0.2 s a hash here) that was most of the suite's
# time. tests/auth/test_clients.py checks the production default separately.
class SecretHashCost(TypedDict):
    """The argon2id cost settings, typed so that `**CHEAP_SECRET_HASH` checks against Settings."""

    secret_hash_time_cost: int
    secret_hash_memory_kib: int
    secret_hash_parallelism: int


CHEAP_SECRET_HASH = SecretHashCost(
    secret_hash_time_cost=1, secret_hash_memory_kib=1024, secret_hash_parallelism=1
)
CHEAP_SECRET_HASH_ENV = {f"HUB_{k.upper()}": str(v) for k, v in CHEAP_SECRET_HASH.items()}
POSTGRES_URL = os.environ.get("HUB_TEST_DATABASE_URL") or None
REDIS_URL = os.environ.get("HUB_TEST_REDIS_URL") or None


def _asyncpg_dsn(url: str, database: str | None = None) -> str:
    parsed = make_url(url).set(drivername="postgresql")
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


@asynccontextmanager
async def fresh_database(tmp_dir: Path, label: str = "hub") -> AsyncIterator[str]:
    """Yield the SQLAlchemy URL of an empty database, dropped afterwards."""
    if POSTGRES_URL is None:
        yield f"sqlite+aiosqlite:///{tmp_dir / f'{label}-{uuid.uuid4().hex[:8]}.db'}"
        return
    name = f"t_{label}_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(_asyncpg_dsn(POSTGRES_URL))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        admin = await asyncpg.connect(_asyncpg_dsn(POSTGRES_URL))
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@asynccontextmanager
async def fresh_key_value() -> AsyncIterator[KeyValue]:
    """Yield an empty store: Redis under a private prefix (deleted afterwards) or in-process."""
    if REDIS_URL is None:
        store = MemoryKeyValue()
        yield store
        await store.close()
        return
    async with fresh_redis_key_value(REDIS_URL) as redis_store:
        yield redis_store


@asynccontextmanager
async def fresh_redis_key_value(url: str) -> AsyncIterator[RedisKeyValue]:
    """Yield the Redis at `url` under a private prefix, whose keys are deleted afterwards."""
    prefix = f"test:{uuid.uuid4().hex[:12]}:"
    client = redis_async.Redis.from_url(url)
    try:
        yield RedisKeyValue(client, prefix)
    finally:
        keys = [key async for key in client.scan_iter(match=prefix + "*", count=500)]
        if keys:
            await client.delete(*keys)
        await client.aclose()


async def _terminate(admin: asyncpg.Connection, database: str | None) -> int:
    killed = await admin.fetch(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE datname = $1 AND pid <> pg_backend_pid()",
        database,
    )
    return len(killed)


async def terminate_sessions(database_url: str) -> int:
    """Kill every open session of a PostgreSQL database, as a restart would; how many."""
    admin = await asyncpg.connect(_asyncpg_dsn(database_url, "postgres"))
    try:
        return await _terminate(admin, make_url(database_url).database)
    finally:
        await admin.close()


@asynccontextmanager
async def database_outage(database_url: str) -> AsyncIterator[None]:
    """Make the audit store really unavailable, then bring it back.

    SQLite: another connection holds the database's exclusive lock. PostgreSQL: the database
    refuses connections and its open sessions are killed.
    """
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        blocker = sqlite3.connect(url.database or "", isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        return
    name = url.database
    admin = await asyncpg.connect(_asyncpg_dsn(database_url, "postgres"))
    try:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        await _terminate(admin, name)
        yield
    finally:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        await admin.close()


@asynccontextmanager
async def private_redis(port: int | None = None) -> AsyncIterator[str]:
    """The URL of a redis-server of this test's own on a free port, or on `port` (to start one
    again where one was stopped): nothing saved, stopped afterwards."""
    async with redis_server(port) as server:
        yield server.url


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """A redis-server of one test's own on a port of its own, which the test may stop and
    start again (empty: nothing is saved). Never the shared Redis."""

    def __init__(self, port: int | None = None) -> None:
        self.port = free_port() if port is None else port
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self._process = await asyncio.create_subprocess_exec(
            "/usr/bin/redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )
        client = redis_async.Redis.from_url(self.url)
        try:
            for _ in range(100):
                try:
                    if await client.ping():
                        return
                except (OSError, RedisConnectionError):  # still starting
                    await asyncio.sleep(0.05)
        finally:
            await client.aclose()
        raise AssertionError("the test's redis-server did not start")

    async def stop(self) -> None:
        """Killed, as a crash would: no shutdown, no goodbye to the clients."""
        if self._process is not None and self._process.returncode is None:
            self._process.kill()
            await self._process.wait()
        self._process = None


@asynccontextmanager
async def redis_server(port: int | None = None) -> AsyncIterator[RedisServer]:
    server = RedisServer(port)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


class TcpProxy:
    """127.0.0.1:port -> target, in this event loop; `cut` is what a server restart or a network
    cut does to one client: while cut, nothing listens on the port (connections are refused),
    and every connection that was open has been reset. `start` serves it (again)."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self.redis_url = f"redis://127.0.0.1:{self.port}/0"  # when the target is a Redis
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()
        self._cuts = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def cut(self) -> None:
        assert self._server is not None
        self._server.close()
        self._cuts += 1
        for writer in list(self._open):
            writer.transport.abort()
        self._open.clear()
        self._server = None

    async def close(self) -> None:
        if self._server is not None:
            await self.cut()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        cuts = self._cuts
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        if cuts != self._cuts:  # accepted just before a cut: it goes with the others
            for end in (writer, up_writer):
                end.transport.abort()
            return
        self._open.update((writer, up_writer))
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            for end in (writer, up_writer):
                self._open.discard(end)
                end.transport.abort()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError, asyncio.IncompleteReadError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.transport.abort()  # one side gone: the other goes too, as a real peer's would


@asynccontextmanager
async def tcp_proxy(target_port: int) -> AsyncIterator[TcpProxy]:
    proxy = TcpProxy("127.0.0.1", target_port)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.close()
