"""HTTP routes of the hub. `graphql_post` is the HTTP door of the request path: read by
docs/architecture.md, which lists the files a request passes."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeout
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute

from auth import CASE_HEADER, PURPOSE_HEADER, AuthError
from auth.errors import Unavailable
from hub.components import Hub
from hub.events import events_post
from hub.gate import Caller, InputRefused, Refusal, admit, auth_refusal
from hub.graphiql import graphiql_asset, graphiql_page
from hub.negotiation import (
    GRAPHQL_RESPONSE,
    JSON,
    NotAcceptable,
    accepted,
    get_payload,
    mutation_by_get,
    post_payload,
)
from hub.operations import check_operations_access
from hub.release import EVIDENCE_HEADER, RECORD_HEADER, answer, respond
from hub.responses import JSONResponse, error_response
from hub.subscriptions import graphql_ws
from hub.transport import trace_id_of
from infra.kv import KeyValueUnavailable
from observability.audit import AuditUnavailable
from observability.logs import bind_request
from observability.metrics import CONTENT_TYPE
from schema import GraphQLRequest

__all__ = [
    "EVIDENCE_HEADER", "OUTAGES", "RECORD_HEADER", "dependency_unavailable", "internal_error",
    "routes",
]

log = logging.getLogger("hub.routes")


def _hub(request: Request) -> Hub:
    hub: Hub = request.app.state.hub
    return hub


async def graphql_post(request: Request) -> Response:
    """The HTTP door of the request path (docs/architecture.md): admit, run, release.

    `hub.gate.admit` makes every check in the request path's order (one shared-store round
    trip for revocation, rate, cost and the permit cache entries); `hub.release` audits the
    answer or the refusal before it leaves. Nothing reaches a source system before admission.
    """

    async def read() -> dict[str, Any]:
        return post_payload(request.headers.get("content-type"), await request.body())

    return await _graphql(request, read)


async def graphql_get(request: Request) -> Response:
    """GraphiQL for a browser that asks for a page; else a GraphQL request in the URL, through
    the very gate a POST passes, but never a mutation (405, `Allow: POST`)."""
    params = request.query_params
    if "text/html" in request.headers.get("accept", "") and not any(
        name in params for name in ("query", "documentId", "extensions")
    ):
        return graphiql_page()
    hub = _hub(request)

    async def read() -> dict[str, Any]:
        return get_payload(params)

    return await _graphql(request, read, vet=lambda asked: mutation_by_get(hub.graphql, asked))


async def _graphql(
    request: Request,
    read: Callable[[], Awaitable[dict[str, Any]]],
    vet: Callable[[GraphQLRequest], InputRefused | None] | None = None,
) -> Response:
    trace_id = trace_id_of(request.scope)
    bind_request(trace_id)
    hub = _hub(request)
    caller = Caller("graphql", trace_id, request.client.host if request.client else None)
    media = accepted(request.headers.get("accept"))

    async def acceptable() -> dict[str, Any]:
        if media is None:
            raise NotAcceptable
        return await read()

    admitted = await admit(
        hub, caller, request.headers.get("authorization"), request.headers.get(PURPOSE_HEADER),
        acceptable, vet=vet, case=request.headers.get(CASE_HEADER),
    )
    if caller.principal is not None:
        bind_request(trace_id, caller.principal.client_id)
    if isinstance(admitted, Refusal):
        return _as(media, await respond(hub, caller, admitted))
    principal = admitted.principal
    with hub.tracer.start_as_current_span("graphql") as span:
        if admitted.admission is None:
            assert admitted.answer is not None
            outcome = admitted.answer
        else:
            numbers = admitted.admission.permit_numbers
            view = hub.permits.primed(numbers, admitted.read)
            outcome = await hub.graphql.execute(
                admitted.admission,
                admitted.request,
                trace_id=trace_id,
                today=dt.date.today(),
                jurisdiction=principal.jurisdiction,
                permits=view,
                known=view.all_hits(),
                person=principal.actor if principal.actor_kind == "SUBJECT" else None,
            )
        # Never the variables: they carry identity numbers.
        span.update_name(f"graphql {outcome.operation_name or 'anonymous'}")
        span.set_attribute("graphql.operation.name", outcome.operation_name or "")
        span.set_attribute("graphql.document.hash", outcome.document_hash or "")
        span.set_attribute("hub.client_id", principal.client_id)
        span.set_attribute("hub.outcome", outcome.outcome)
        if outcome.error_codes:
            span.set_attribute("hub.error_codes", outcome.error_codes)
    return _as(media, await answer(hub, caller, outcome))


def _as(media: str | None, response: Response) -> Response:
    """The answer in the media type the client accepts (the body is the same JSON), kept by
    no cache: a GET's answer would otherwise sit in a browser's disk cache, personal data and
    all."""
    if media == GRAPHQL_RESPONSE and response.headers.get("content-type") == JSON:
        response.headers["content-type"] = GRAPHQL_RESPONSE
    response.headers["cache-control"] = "no-store"
    return response


async def internal_error(request: Request, exc: Exception) -> Response:
    """Anything unexpected: logged with its trace id, masked for the client (no stack, no SQL)."""
    trace_id = trace_id_of(request.scope)
    log.exception("unexpected error (trace %s)", trace_id)
    return error_response(500, "INTERNAL", "Internal error.", trace_id)


#: Exceptions that mean the hub database, the audit store or Redis is down, wherever they come
#: from: answered 503 with Retry-After by `dependency_unavailable`, not 500.
OUTAGES: tuple[type[Exception], ...] = (
    AuditUnavailable, KeyValueUnavailable, DBAPIError, SQLAlchemyTimeout, ConnectionError,
)


async def dependency_unavailable(request: Request, exc: Exception) -> Response:
    """A dependency outage no route mapped itself: 503, Retry-After, one log line (no stack)."""
    trace_id = trace_id_of(request.scope)
    log.warning("dependency unavailable on %s (%s; trace %s)",
                request.url.path, type(exc).__name__, trace_id)
    retry = {"retry-after": str(Unavailable.retry_after), "cache-control": "no-store"}
    if request.url.path.startswith("/oauth/"):  # RFC 6749 error form on the OAuth routes
        body = {"error": "temporarily_unavailable", "error_description": "try again later"}
        return JSONResponse(body, status_code=503, headers=retry)
    return error_response(
        503, "UPSTREAM_UNAVAILABLE", "The hub cannot answer now; retry.", trace_id, retry
    )


async def metrics(request: Request) -> Response:
    """Operators only (`hub.operations`): the samples name every client and its traffic."""
    hub = _hub(request)
    try:
        await check_operations_access(request, hub)
    except AuthError as exc:
        trace_id = trace_id_of(request.scope)
        refused = auth_refusal(exc, trace_id, token=True)
        return error_response(
            refused.status, refused.code, refused.message, trace_id, dict(refused.headers)
        )
    return Response(hub.metrics.render(), media_type=CONTENT_TYPE)


# What a person who opens the hub's address in a browser needs: where to go next. No asset
# from anywhere, no data, nothing about the deployment.
_INDEX = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>permit-hub</title></head>
<body style="font-family: sans-serif; max-width: 44em; margin: 2em auto; line-height: 1.5">
<h1>permit-hub</h1>
<p>The GraphQL data-exchange hub for foreigners' work permits and social security cards.
Every request needs an OAuth 2.0 access token and an <code>X-Purpose-Of-Use</code> header;
every access is audited.</p>
<ul>
<li><a href="/graphql">/graphql</a>: the GraphQL endpoint (POST; GraphiQL in a browser)</li>
<li><a href="/.well-known/oauth-authorization-server">/.well-known/oauth-authorization-server</a>:
the token endpoint and what it accepts</li>
<li><a href="/.well-known/jwks.json">/.well-known/jwks.json</a>: the keys that sign tokens,
evidence and audit checkpoints</li>
<li><a href="/healthz">/healthz</a> and <a href="/readyz">/readyz</a>: liveness and readiness</li>
</ul>
<p>The project's README explains the first query, the scopes and the demo agencies.</p>
</body></html>
"""


async def index(request: Request) -> Response:
    if "application/json" in request.headers.get("accept", ""):
        return JSONResponse({
            "graphql": "/graphql",
            "oauth_metadata": "/.well-known/oauth-authorization-server",
            "jwks": "/.well-known/jwks.json",
            "health": "/healthz",
            "readiness": "/readyz",
        })
    return HTMLResponse(_INDEX)


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    """The overall status for anyone (a load balancer); the checks for operators only."""
    hub = _hub(request)
    try:
        await check_operations_access(request, hub)
    except AuthError:
        ready = all(ok is not False for ok in (await hub.shared_readiness()).values())
        status = "ready" if ready else "unready"
        return JSONResponse({"status": status}, status_code=200 if ready else 503)
    checks = await hub.readiness()
    ready = all(ok is not False for ok in checks.values())
    return JSONResponse(
        {
            "status": "ready" if ready else "unready",
            "checks": checks,
            "signing_key_age_seconds": round(hub.auth.signing_key_age()),
        },
        status_code=200 if ready else 503,
    )


def routes() -> list[BaseRoute]:
    return [
        Route("/graphql", graphql_post, methods=["POST"]),
        Route("/graphql", graphql_get, methods=["GET"]),
        WebSocketRoute("/graphql", graphql_ws),
        Route("/graphiql/{name}", graphiql_asset, methods=["GET"]),
        Route("/events/permits", events_post, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/", index, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]
