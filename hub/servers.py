"""Serving ASGI apps with uvicorn on sockets we bind ourselves (so port 0 gives a free port)."""

from __future__ import annotations

import socket
from collections.abc import Sequence

import uvicorn
from starlette.types import ASGIApp

__all__ = ["bind", "new_server", "port_of"]


def bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def port_of(sock: socket.socket) -> int:
    return int(sock.getsockname()[1])


def new_server(
    app: ASGIApp,
    *,
    log_level: str = "warning",
    access_log: bool = False,
    forwarded_allow_ips: Sequence[str] = (),
) -> uvicorn.Server:
    """`forwarded_allow_ips`: the proxies whose X-Forwarded-* headers are believed (none by
    default; uvicorn's own default believes any local process)."""
    # log_config=None: uvicorn's loggers propagate to the root JSON handler (observability.logs)
    config = uvicorn.Config(
        app, log_level=log_level, access_log=access_log, lifespan="on", log_config=None,
        proxy_headers=bool(forwarded_allow_ips), forwarded_allow_ips=list(forwarded_allow_ips),
    )
    return uvicorn.Server(config)
