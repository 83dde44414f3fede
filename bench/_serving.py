"""Serving helpers for the benchmark's server processes: N processes on one port.

Each worker process binds its own listening socket with SO_REUSEPORT, so the kernel spreads
incoming connections over the workers (what `uvicorn --workers` or a process manager gives
production, without the hub needing a worker option of its own). A worker announces that it is
ready by creating a file, so that the harness knows *every* worker is up, not just one.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import uvicorn
from starlette.types import ASGIApp


def reuseport_socket(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


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
