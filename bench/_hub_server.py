"""One hub worker for the benchmark, configured by `HUB_*` variables exactly as `hub serve` is.

    python -m bench._hub_server --port P [--no-access-log] [--ready-dir DIR]     (uvicorn)
    granian --interface asgi --factory bench._hub_server:granian_app ...         (granian)

`hub serve --workers N` forks N uvicorn workers from one supervisor, which hides their pids
and start-up from the harness. This module does what each of those workers does (settings from
the environment, JSON logging, `hub.app.create_app`, uvicorn at log level "info" with uvicorn's
default access log), except that it binds a SO_REUSEPORT socket, so that the harness can start
one per core on one port itself, know when each is ready, and measure each one's CPU.
Each worker creates `ready-<pid>` in the ready directory once the hub's components are open.
"""

from __future__ import annotations

import argparse
import os

from starlette.applications import Starlette

from bench._serving import mark_ready, serve_uvicorn
from hub.app import create_app
from hub.components import Hub
from hub.runtime import settle_heap
from hub.settings import Settings
from observability.logs import configure_logging


def _app(ready_dir: str | None) -> Starlette:
    settings = Settings()
    configure_logging()

    async def on_ready(hub: Hub) -> None:
        if os.environ.get("BENCH_NO_SETTLE") != "1":  # A/B of hub.runtime.settle_heap
            settle_heap()
        mark_ready(ready_dir)

    return create_app(settings, on_ready=on_ready)


def granian_app() -> Starlette:
    """granian's `--factory` target: it passes no arguments, so the ready dir comes by env."""
    return _app(os.environ.get("BENCH_READY_DIR"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--no-access-log", action="store_true")
    parser.add_argument("--ready-dir")
    args = parser.parse_args()
    serve_uvicorn(
        _app(args.ready_dir), args.host, args.port,
        log_level="info", access_log=not args.no_access_log,
    )


if __name__ == "__main__":
    main()
