"""Slow or half-sent requests are cut; a client hanging up mid-body is not an error.

A real `hub serve` process (the way operators start it) with one-second header and body
timeouts, talked to over raw sockets, since an HTTP client library always sends whole requests.
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from hub.admin import admin_services
from hub.demo_clients import seed_demo_clients
from tests.conftest import Simulators, _drop_prefix, hub_settings
from tests.hub.test_two_instances import _free_port, _serve_env, _wait_healthy

TIMEOUT = 1.0  # seconds, for both the headers and the body
PATIENCE = 15.0  # how long a test waits before calling the connection never closed


@dataclass
class Served:
    port: int
    token: str
    log: Path

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection("127.0.0.1", self.port)

    def log_records(self) -> list[dict[str, object]]:
        lines = self.log.read_text(errors="replace").splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]


@asynccontextmanager
async def _hub_serve(
    simulators: Simulators, database_url: str, tmp_path: Path
) -> AsyncIterator[Served]:
    prefix = f"test:{uuid.uuid4().hex[:12]}:"
    settings = hub_settings(simulators, database_url, tmp_path, prefix)
    async with admin_services(settings) as admin:
        seeded = {str(c["client_id"]): c for c in await seed_demo_clients(admin.auth)}
        token = await admin.auth.issue_token("exit-entry-wuhan", "permit:validity")
    assert seeded
    env = _serve_env(simulators, database_url, tmp_path, settings, prefix)
    env["HUB_REQUEST_HEADER_TIMEOUT_SECONDS"] = str(TIMEOUT)
    env["HUB_REQUEST_BODY_TIMEOUT_SECONDS"] = str(TIMEOUT)
    port = _free_port()
    log = tmp_path / "hub-serve.log"
    with log.open("wb") as sink:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "hub", "serve", "--port", str(port), "--no-access-log",
            env=env, stdout=sink, stderr=sink,
        )
        try:
            await _wait_healthy(f"http://127.0.0.1:{port}", process)
            yield Served(port, token, log)
        finally:
            process.terminate()
            await asyncio.wait_for(process.wait(), timeout=20)
            await _drop_prefix(prefix)


async def _closed_within(reader: asyncio.StreamReader, seconds: float) -> bytes:
    """Everything the server sent until it closed the connection (fails if it never does)."""
    return await asyncio.wait_for(reader.read(), timeout=seconds)


def _request(served: Served, body: bytes, length: int | None = None) -> bytes:
    head = (
        "POST /graphql HTTP/1.1\r\nHost: hub\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {served.token}\r\nX-Purpose-Of-Use: residence-permit-check\r\n"
        f"Content-Length: {len(body) if length is None else length}\r\n\r\n"
    )
    return head.encode() + body


async def test_connections_that_never_finish_their_headers_are_closed(
    simulators: Simulators, database_url: str, tmp_path: Path
) -> None:
    async with _hub_serve(simulators, database_url, tmp_path) as served:
        opened = [await served.connect() for _ in range(20)]
        for _, writer in opened:
            writer.write(b"POST /graphql HTTP/1.1\r\nHost: hub\r\n")
            await writer.drain()
        slow_reader, slow_writer = await served.connect()  # one header byte at a time
        for byte in b"GET /healthz HTTP/1.1\r\nX-Slow: " + b"a" * 10:
            if slow_reader.at_eof():
                break
            slow_writer.write(bytes([byte]))
            await asyncio.sleep(0.2)
        sent = [await _closed_within(reader, PATIENCE) for reader, _ in opened]
        slow = await _closed_within(slow_reader, PATIENCE)
        for _, writer in [*opened, (slow_reader, slow_writer)]:
            writer.close()
    assert sent == [b""] * 20  # closed, with nothing to answer
    assert slow == b""


async def test_a_body_that_stops_arriving_gets_408_and_the_connection_closes(
    simulators: Simulators, database_url: str, tmp_path: Path
) -> None:
    async with _hub_serve(simulators, database_url, tmp_path) as served:
        reader, writer = await served.connect()
        writer.write(_request(served, b'{"query": "{ __typ', length=200))
        await writer.drain()
        answer = await _closed_within(reader, PATIENCE)
        writer.close()
        records = served.log_records()
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    assert b"BAD_USER_INPUT" in answer
    assert not [r for r in records if r["level"] == "error" or "stack" in r], records


async def test_a_client_that_hangs_up_mid_body_is_one_line_and_no_error(
    simulators: Simulators, database_url: str, tmp_path: Path
) -> None:
    async with _hub_serve(simulators, database_url, tmp_path) as served:
        _, writer = await served.connect()
        writer.write(_request(served, b'{"query": "{ __typ', length=200))
        await writer.drain()
        await asyncio.sleep(0.3)  # the hub has the headers and waits for the body
        writer.close()
        await writer.wait_closed()
        await asyncio.sleep(0.5)  # the hub notices the disconnect
        _, probe = await served.connect()  # still serving
        probe.close()
        records = served.log_records()
    assert not [r for r in records if r["level"] in ("error", "critical")], records
    assert not [r for r in records if "stack" in r], records
    about = [r for r in records if "disconnected" in str(r["message"])]
    assert len(about) == 1 and about[0]["level"] in ("info", "warning")


async def test_keep_alive_and_bodies_sent_in_parts_in_time_are_unaffected(
    simulators: Simulators, database_url: str, tmp_path: Path
) -> None:
    body = b'{"query": "{ __typename }"}'
    async with _hub_serve(simulators, database_url, tmp_path) as served:
        reader, writer = await served.connect()
        answers = []
        for _ in range(3):  # one connection, three requests, each body in two parts
            request = _request(served, body)
            writer.write(request[: len(request) - 10])
            await writer.drain()
            await asyncio.sleep(TIMEOUT / 2)
            writer.write(request[len(request) - 10 :])
            await writer.drain()
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), PATIENCE)
            length = next(
                int(line.split(b":")[1]) for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            answers.append((head, await reader.readexactly(length)))
            await asyncio.sleep(TIMEOUT / 2)  # idle between requests, under the timeouts
        writer.close()
    for head, payload in answers:
        assert head.startswith(b"HTTP/1.1 200 "), head
        assert json.loads(payload) == {"data": {"__typename": "Query"}}
