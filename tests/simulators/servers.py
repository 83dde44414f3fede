"""Serve an ASGI app over real HTTP inside the test's event loop: `async with serve(app) as url`.

uvicorn runs in an asyncio task on 127.0.0.1 with an OS-chosen free port (no races between
parallel runs), without touching the process's signal handlers, and is shut down (lifespan
included) when the block exits. Reused by every suite that needs a real server.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import uvicorn
from starlette.types import ASGIApp

__all__ = ["serve"]

_STARTUP_TIMEOUT_SECONDS = 10.0


class _InProcessServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # Ctrl-C belongs to pytest, not to a server living inside one of its tests.
        yield


def _bound_port(server: uvicorn.Server) -> int:
    for listener in server.servers:
        for sock in listener.sockets:
            return int(sock.getsockname()[1])
    raise RuntimeError("uvicorn started without a listening socket")


@contextlib.asynccontextmanager
async def serve(app: ASGIApp, **config: Any) -> AsyncIterator[str]:
    """Yield the base URL (`http://127.0.0.1:PORT`) of `app` served by uvicorn.

    Extra keyword arguments go to `uvicorn.Config` (e.g. `ws="websockets-sansio"`).
    """
    options: dict[str, Any] = {
        "host": "127.0.0.1", "port": 0, "log_level": "warning", "access_log": False,
        "lifespan": "auto", "ws": "none", "timeout_graceful_shutdown": 3,
    }
    server = _InProcessServer(uvicorn.Config(app, **(options | config)))
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(_STARTUP_TIMEOUT_SECONDS):
            while not server.started:
                if task.done():
                    task.result()  # re-raise why it failed to start
                    raise RuntimeError("uvicorn exited before it started")
                await asyncio.sleep(0.005)
        yield f"http://127.0.0.1:{_bound_port(server)}"
    finally:
        server.should_exit = True
        await task
