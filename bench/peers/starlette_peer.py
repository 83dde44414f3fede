"""The raw Starlette peer: one route that answers the `validity` query from memory.

    python -m bench.peers.starlette_peer --port P --data PERMITS.json [--ready-dir DIR]

No GraphQL at all: it reads the JSON body, takes the permit number from the variables and
returns the same JSON the hub returns. Served like the hub (uvicorn, one process per worker on
a SO_REUSEPORT socket), without an access log.
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bench._serving import mark_ready, serve_uvicorn


def build_app(permits: dict[str, Any], ready_dir: str | None) -> Starlette:
    async def graphql(request: Request) -> Response:
        payload = orjson.loads(await request.body())
        number = str((payload.get("variables") or {}).get("n"))
        body = orjson.dumps({"data": {"permit": permits.get(number)}})
        return Response(body, media_type="application/json")

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        mark_ready(ready_dir)
        yield

    return Starlette(routes=[Route("/graphql", graphql, methods=["POST"])], lifespan=lifespan)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--ready-dir")
    args = parser.parse_args()
    permits = orjson.loads(Path(args.data).read_bytes())
    app = build_app(permits, args.ready_dir)
    serve_uvicorn(app, args.host, args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
