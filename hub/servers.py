"""Serving ASGI apps with uvicorn on sockets we bind ourselves (so port 0 gives a free port).

Every server the project starts (`hub demo` and its simulators, `hub serve`, `hub simulate`,
the benchmark's processes) listens on a socket from `bind`, so that what a listening socket
needs is said once: see `bind` for why its protocol is IPPROTO_TCP.

uvicorn closes an idle keep-alive connection, but waits forever for a request's headers: a
client that opens connections and sends a few bytes now and then holds them all. The protocol
here closes a connection whose request headers have not all arrived `header_timeout` seconds
after it opened, or after the previous response. (A body that does not arrive is the ASGI
side's: `hub.transport.BodyLimits`.) It must never cut a request whose headers are complete.
"""

from __future__ import annotations

import asyncio
import functools
import socket
import sys
from collections.abc import Sequence
from typing import Any, cast

import uvicorn
from starlette.types import ASGIApp
from uvicorn.config import STARTUP_FAILURE
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = [
    "DEFAULT_HEADER_TIMEOUT_SECONDS",
    "HeaderTimeoutProtocol",
    "bind",
    "http_protocol",
    "new_server",
    "port_of",
    "run_server",
    "serve_app",
]

DEFAULT_HEADER_TIMEOUT_SECONDS = 10.0


def bind(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """A TCP socket bound to host:port (port 0: a free one), for uvicorn to listen on.

    Made with protocol IPPROTO_TCP, not 0: asyncio's own event loop turns Nagle's algorithm off
    (TCP_NODELAY) on an accepted connection only when the socket says it is TCP, and accepted
    connections carry the listening socket's protocol. With Nagle on, the second write of a
    response (uvicorn writes the headers, then the body) waits for the client's delayed ACK:
    some 40 ms on every keep-alive request. (uvloop turns it off whatever the protocol says.)
    `reuse_port`: several processes may bind the same port and the kernel spreads the
    connections over them (the benchmark's workers).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def port_of(sock: socket.socket) -> int:
    return int(sock.getsockname()[1])


class HeaderTimeoutProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, with a deadline on each request's headers."""

    def __init__(
        self, *args: Any, header_timeout: float = DEFAULT_HEADER_TIMEOUT_SECONDS, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self._header_timeout = header_timeout
        self._header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()

    def on_headers_complete(self) -> None:
        self._cancel_header_timer()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        queued = bool(self.pipeline)  # a pipelined request already has its headers
        super().on_response_complete()
        if not queued and not self.transport.is_closing():
            self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    def _arm_header_timer(self) -> None:
        self._cancel_header_timer()
        self._header_timer = self.loop.call_later(self._header_timeout, self._headers_too_slow)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        # Nothing to answer: the request is not there to answer. Not logged one by one either:
        # a flood of these is what the timeout is for.
        self._header_timer = None
        if not self.transport.is_closing():
            self.transport.close()


def http_protocol(header_timeout: float) -> type[asyncio.Protocol]:
    """The `http` of a `uvicorn.Config`: picklable, so `hub serve --workers N` can spawn it."""
    protocol = functools.partial(HeaderTimeoutProtocol, header_timeout=header_timeout)
    return cast("type[asyncio.Protocol]", protocol)


def new_server(
    app: ASGIApp,
    *,
    log_level: str = "warning",
    access_log: bool = False,
    forwarded_allow_ips: Sequence[str] = (),
    header_timeout: float = DEFAULT_HEADER_TIMEOUT_SECONDS,
) -> uvicorn.Server:
    """`forwarded_allow_ips`: the proxies whose X-Forwarded-* headers are believed (none by
    default; uvicorn's own default believes any local process)."""
    # log_config=None: uvicorn's loggers propagate to the root JSON handler (observability.logs)
    config = uvicorn.Config(
        app,
        log_level=log_level,
        access_log=access_log,
        lifespan="on",
        log_config=None,
        proxy_headers=bool(forwarded_allow_ips),
        forwarded_allow_ips=list(forwarded_allow_ips),
        http=http_protocol(header_timeout),
    )
    return uvicorn.Server(config)


def run_server(config: uvicorn.Config) -> None:
    """What `uvicorn.run` does with `config` (one process, or `config.workers` forked ones on
    one port), on a socket from `bind` at its host and port; until interrupted."""
    from uvicorn.supervisors import Multiprocess

    try:
        sock = bind(config.host, config.port)
    except OSError as exc:
        where = f"{config.host}:{config.port}"
        raise SystemExit(f"hub: error: cannot listen on {where}: {exc}") from None
    server = uvicorn.Server(config)
    try:
        if config.workers > 1:
            Multiprocess(config, sockets=[sock]).run()
        else:
            server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
    if config.workers == 1 and not server.started:
        sys.exit(STARTUP_FAILURE)  # what uvicorn.run exits with


def serve_app(app: ASGIApp, host: str, port: int) -> None:
    """`app` alone on host:port, uvicorn's defaults at log level info (`hub simulate`)."""
    run_server(uvicorn.Config(app, host=host, port=port, log_level="info"))
