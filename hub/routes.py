"""HTTP routes of the hub. The GraphQL route is the request path of DESIGN section 2, top to bottom."""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route
from strawberry.http.ides import get_graphql_ide_html

from hub.components import Hub
from hub.responses import JSONResponse, error_response
from hub.transport import trace_id_of
from schema import GraphQLRequest

__all__ = ["routes"]


class BadRequest(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _hub(request: Request) -> Hub:
    hub: Hub = request.app.state.hub
    return hub


async def _read_graphql_request(request: Request) -> GraphQLRequest:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise BadRequest("POST /graphql takes Content-Type: application/json")
    try:
        payload: Any = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        raise BadRequest("the body is not valid JSON") from None
    return _graphql_request_of(payload)


def _graphql_request_of(payload: Any) -> GraphQLRequest:
    if not isinstance(payload, dict):
        raise BadRequest("the body must be one JSON object (batched requests are not accepted)")
    query, variables, operation = (
        payload.get("query"), payload.get("variables"), payload.get("operationName")
    )
    if not isinstance(query, str) or not query.strip():
        raise BadRequest("`query` must be a non-empty string")
    if variables is not None and not isinstance(variables, dict):
        raise BadRequest("`variables` must be an object")
    if operation is not None and not isinstance(operation, str):
        raise BadRequest("`operationName` must be a string")
    return GraphQLRequest(query=query, variables=variables, operation_name=operation)


async def graphql_post(request: Request) -> Response:
    trace_id = trace_id_of(request.scope)
    hub = _hub(request)
    try:
        graphql_request = await _read_graphql_request(request)
    except BadRequest as exc:
        return error_response(400, "BAD_USER_INPUT", exc.message, trace_id)
    outcome = await hub.graphql.run(graphql_request, trace_id=trace_id, today=dt.date.today())
    return JSONResponse(outcome.body, status_code=outcome.status)


async def graphql_get(request: Request) -> Response:
    if "text/html" in request.headers.get("accept", "") and "query" not in request.query_params:
        return HTMLResponse(get_graphql_ide_html("graphiql"))
    trace_id = trace_id_of(request.scope)
    return error_response(
        405, "BAD_USER_INPUT", "send GraphQL requests with POST", trace_id, {"allow": "POST"}
    )


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    checks = await _hub(request).readiness()
    ready = all(checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "unready", "checks": checks},
        status_code=200 if ready else 503,
    )


def routes() -> list[Route]:
    return [
        Route("/graphql", graphql_post, methods=["POST"]),
        Route("/graphql", graphql_get, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
    ]
