"""GraphQL over HTTP at the door: which media type an answer is sent in, and the request a
`GET /graphql` or a `POST /graphql` carries (README, "GraphQL over HTTP").

    Accept                                   answer's Content-Type
    (none), */*, application/*               application/json (as always)
    application/json                         application/json
    application/graphql-response+json        application/graphql-response+json
    both                                     the higher q; on a tie graphql-response+json
    neither (e.g. text/csv)                  406, in application/json

The statuses do not depend on the media type: a document that does not parse or validate, or
whose variables do not coerce, is 400 in both (graphql-response+json asks for it; with
application/json the hub kept the 400 its clients know), an executed request is 200 with its
errors. The readers raise `InputRefused`, so their refusals are the gate's input refusals:
reported after the token, purpose and rate, and audited like every other.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from graphql import OperationDefinitionNode, OperationType

from hub.gate import BadRequest, InputRefused
from schema import GraphQLRequest
from schema.pipeline import GraphQLService

__all__ = [
    "GRAPHQL_RESPONSE", "JSON", "NotAcceptable", "UnsupportedMediaType", "accepted",
    "get_payload", "mutation_by_get", "post_payload",
]

JSON = "application/json"
GRAPHQL_RESPONSE = "application/graphql-response+json"
_WILDCARDS = ("*/*", "application/*")


class UnsupportedMediaType(InputRefused):
    def __init__(self, content_type: str) -> None:
        shown = content_type[:60] or "none"
        super().__init__(
            415, "BAD_USER_INPUT",
            f"POST /graphql takes Content-Type: application/json (not {shown})",
        )


class NotAcceptable(InputRefused):
    def __init__(self) -> None:
        super().__init__(
            406, "BAD_USER_INPUT",
            f"the hub answers in {JSON} or {GRAPHQL_RESPONSE}; the Accept header allows neither",
        )


def accepted(accept: str | None) -> str | None:
    """The media type to answer in, or None when the Accept header allows neither."""
    if accept is None or not accept.strip():
        return JSON
    best: tuple[float, bool, str] | None = None
    for item in accept.split(","):
        media, *params = (part.strip() for part in item.split(";"))
        media = media.lower()
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality <= 0:
            continue
        if media in _WILDCARDS:
            chosen = JSON
        elif media in (JSON, GRAPHQL_RESPONSE):
            chosen = media
        else:
            continue
        # Higher q first; on equal q the spec's own type (the statuses are the same in both).
        rank = (quality, chosen == GRAPHQL_RESPONSE, chosen)
        if best is None or rank[:2] > best[:2]:
            best = rank
    return best[2] if best else None


def post_payload(content_type: str | None, body: bytes) -> dict[str, Any]:
    """The JSON object of a POST (415 for another media type, 400 for a body that is not one)."""
    media = (content_type or "").split(";")[0].strip().lower()
    if media != JSON:
        raise UnsupportedMediaType(media)
    try:
        payload: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise BadRequest("the body is not valid JSON") from None
    if not isinstance(payload, dict):
        raise BadRequest("the body must be one JSON object (batched requests are not accepted)")
    return _extensions_checked(payload)


def get_payload(params: Mapping[str, str]) -> dict[str, Any]:
    """The request of a GET's URL parameters: `query`, `operationName`, and `variables` and
    `extensions` as JSON text (`documentId` too, for trusted documents)."""
    payload: dict[str, Any] = {}
    for name in ("query", "operationName", "documentId"):
        if name in params:
            payload[name] = params[name]
    for name in ("variables", "extensions"):
        if name in params:
            try:
                payload[name] = orjson.loads(params[name])
            except orjson.JSONDecodeError:
                raise BadRequest(f"`{name}` must be a JSON object") from None
    return _extensions_checked(payload)


def _extensions_checked(payload: dict[str, Any]) -> dict[str, Any]:
    """`extensions`, when sent, is an object (the other parameters are the gate's to check)."""
    extensions = payload.get("extensions")
    if extensions is not None and not isinstance(extensions, dict):
        raise BadRequest("`extensions` must be an object")
    return payload


def mutation_by_get(graphql: GraphQLService, request: GraphQLRequest) -> InputRefused | None:
    """405 for a GET whose operation is a mutation (GET is safe: it changes nothing). A document
    that does not parse or names no operation passes here; the GraphQL stage refuses it."""
    if graphql.limits.check_size(request.query) is not None:
        return None  # too large to parse here: the GraphQL stage refuses it
    prepared = graphql.prepare(request.query)  # cached: the GraphQL stage reuses it
    if prepared.document is None:
        return None
    operations = [
        d for d in prepared.document.definitions if isinstance(d, OperationDefinitionNode)
    ]
    name = request.operation_name
    chosen = [
        o for o in operations
        if (name is None and len(operations) == 1)
        or (name is not None and o.name is not None and o.name.value == name)
    ]
    if any(o.operation is OperationType.MUTATION for o in chosen):
        return InputRefused(
            405, "BAD_USER_INPUT", "mutations are sent with POST, never GET",
            headers={"allow": "POST"},
        )
    return None
