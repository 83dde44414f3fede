"""Serving helpers for the benchmark's server processes: N processes on one port.

Each worker process binds its own listening socket with SO_REUSEPORT, so the kernel spreads
incoming connections over the workers (what `uvicorn --workers` or a process manager gives
production, without the hub needing a worker option of its own). A worker announces that it is
ready by creating a file, so that the harness knows *every* worker is up, not just one.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
from collections.abc import Callable
from pathlib import Path

import httptools
import uvicorn
from starlette.types import ASGIApp

from hub.servers import bind


def reuseport_socket(host: str, port: int) -> socket.socket:
    return bind(host, port, reuse_port=True)  # the one place a listening socket is made


def mark_ready(directory: str | None) -> None:
    if directory:
        Path(directory, f"ready-{os.getpid()}").touch()


def serve_uvicorn(
    app: ASGIApp, host: str, port: int, *, log_level: str, access_log: bool
) -> None:
    """uvicorn as `hub serve` runs it (uvloop, httptools, lifespan on), on a SO_REUSEPORT socket."""
    sock = reuseport_socket(host, port)
    config = uvicorn.Config(
        app, log_level=log_level, access_log=access_log, log_config=None, lifespan="on"
    )
    uvicorn.Server(config).run(sockets=[sock])


class HttpProtocol(asyncio.Protocol):
    """An HTTP/1.1 server protocol on httptools: the parser calls the subclass's `on_*`
    callbacks (`on_url`, `on_body`, `on_message_complete`); a request it cannot parse closes
    the connection."""

    def __init__(self) -> None:
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # uvloop's is no asyncio.Transport

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            if self._transport is not None:
                self._transport.close()


def run_protocol_server(protocol: Callable[[], asyncio.Protocol]) -> None:
    """`main` of a raw asyncio server (the no-op server, the OTLP sink): --host, --port,
    --ready-dir; SO_REUSEPORT so several processes can share the port."""
    import uvloop

    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ready-dir")
    args = parser.parse_args()

    async def serve() -> None:
        sock = reuseport_socket(args.host, args.port)
        server = await asyncio.get_running_loop().create_server(protocol, sock=sock, backlog=1024)
        mark_ready(args.ready_dir)
        async with server:
            await server.serve_forever()

    uvloop.run(serve())
