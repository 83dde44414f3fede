"""HTTP plumbing shared by the simulator apps: orjson responses, request-body checks, app assembly.

Every simulator app is built by `simulator_app`, so each one carries the `SimControl`
counters and faults and answers a bad request with 400 `{"error": "bad_request"}`. Nothing
here knows a source system's data.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import Lifespan

from simulators._control import SimControl

__all__ = [
    "MAX_BATCH",
    "BadRequest",
    "JSONBody",
    "healthz",
    "not_found",
    "read_id_list",
    "read_object",
    "simulator_app",
]

MAX_BATCH = 500


class BadRequest(Exception):
    """The request is malformed; answered with 400 and this detail."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class JSONBody(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def not_found() -> JSONBody:
    return JSONBody({"error": "not_found"}, status_code=404)


async def healthz(request: Request) -> JSONBody:
    return JSONBody({"status": "ok"})


async def read_object(request: Request) -> dict[str, Any]:
    """The request body as a JSON object."""
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        raise BadRequest("body is not JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("expected a JSON object")
    return body


async def read_id_list(request: Request, key: str) -> list[str]:
    """The list of strings under `key` in a JSON object body, at most MAX_BATCH of them."""
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        raise BadRequest("body is not JSON") from None
    values = body.get(key) if isinstance(body, dict) else None
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise BadRequest(f'expected {{"{key}": [string, ...]}}')
    if len(values) > MAX_BATCH:
        raise BadRequest(f"at most {MAX_BATCH} {key} per request, got {len(values)}")
    return values


async def _bad_request(request: Request, exc: Exception) -> Response:
    detail = exc.detail if isinstance(exc, BadRequest) else "bad request"
    return JSONBody({"error": "bad_request", "detail": detail}, status_code=400)


def simulator_app(
    routes: Sequence[BaseRoute],
    lifespan: Lifespan[Starlette] | None = None,
    seed: int = 0,
) -> Starlette:
    """A Starlette app over `routes` with the /_sim controls and the 400 handler installed."""
    return Starlette(
        routes=list(routes),
        middleware=[Middleware(SimControl, routes=routes, seed=seed)],
        exception_handlers={BadRequest: _bad_request},
        lifespan=lifespan,
    )
