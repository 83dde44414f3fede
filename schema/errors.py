"""GraphQL errors and their `extensions.code`: the one place where exceptions become codes.

    HubError (GraphQLError with a code)
    ├── BadUserInput            BAD_USER_INPUT
    ├── Forbidden               FORBIDDEN        (with the denied field paths)
    ├── PurposeNotAllowed       PURPOSE_NOT_ALLOWED (the root fields the purpose does not cover)
    ├── QueryTooComplex         QUERY_TOO_COMPLEX
    ├── NotFound                NOT_FOUND
    └── Conflict                CONFLICT

Errors of the layers below are mapped in `_CODES`: a workflow's `WorkflowRejected` is
BAD_USER_INPUT, its `WorkflowNotFound` NOT_FOUND, its `OutOfJurisdiction` FORBIDDEN, its
`WorkflowConflict` and a connector's `WriteConflict` are CONFLICT (all: nothing was changed; a
workflow error's own `extensions`, such as `reason` or `existingRegion`, go with the code).
`code_for` serves per-item errors reported inside data (a batch).
Anything not listed there is INTERNAL and its message is masked.
"""

from __future__ import annotations

from typing import Any

from graphql import GraphQLError

from connectors.errors import UpstreamTimeout, UpstreamUnavailable, WriteConflict
from connectors.identifiers import InvalidIdentifier
from schema.workflows.errors import (
    OutOfJurisdiction,
    WorkflowConflict,
    WorkflowNotFound,
    WorkflowRejected,
)

__all__ = [
    "BadUserInput",
    "Conflict",
    "Forbidden",
    "HubError",
    "NotFound",
    "PurposeNotAllowed",
    "QueryTooComplex",
    "code_for",
    "format_error",
]


class HubError(GraphQLError):
    code = "INTERNAL"

    def __init__(self, message: str, **extensions: Any) -> None:
        super().__init__(message, extensions={"code": self.code, **extensions})


class BadUserInput(HubError):
    code = "BAD_USER_INPUT"


class Forbidden(HubError):
    code = "FORBIDDEN"


class PurposeNotAllowed(HubError):
    code = "PURPOSE_NOT_ALLOWED"


class QueryTooComplex(HubError):
    code = "QUERY_TOO_COMPLEX"


class RateLimited(HubError):
    code = "RATE_LIMITED"


class Conflict(HubError):
    code = "CONFLICT"


class NotFound(HubError):
    code = "NOT_FOUND"


_CODES: tuple[tuple[type[BaseException], str], ...] = (
    (InvalidIdentifier, "BAD_USER_INPUT"),
    (WorkflowRejected, "BAD_USER_INPUT"),
    (WorkflowNotFound, "NOT_FOUND"),
    (OutOfJurisdiction, "FORBIDDEN"),
    (WorkflowConflict, "CONFLICT"),
    (WriteConflict, "CONFLICT"),
    (UpstreamTimeout, "UPSTREAM_TIMEOUT"),
    (UpstreamUnavailable, "UPSTREAM_UNAVAILABLE"),
)

_MESSAGES = {
    "UPSTREAM_TIMEOUT": "A source system did not answer in time.",
    "UPSTREAM_UNAVAILABLE": "A source system is unavailable.",
    "INTERNAL": "Internal error.",
}


def code_for(exc: BaseException) -> str:
    """The `extensions.code` of an exception raised below the schema."""
    if isinstance(exc, HubError):
        return exc.code
    for kind, code in _CODES:
        if isinstance(exc, kind):
            return code
    return "INTERNAL"


def code_of(error: GraphQLError) -> str:
    original = error.original_error
    if original is None:
        code = (error.extensions or {}).get("code")
        return str(code) if code else "BAD_USER_INPUT"  # graphql-core syntax/validation errors
    return code_for(original)


def format_error(error: GraphQLError, trace_id: str) -> dict[str, Any]:
    """The client's view of an error: a safe message, the code, the trace id; never a stack."""
    code = code_of(error)
    original = error.original_error
    if code == "BAD_USER_INPUT" and isinstance(original, InvalidIdentifier):
        message = str(original)
    elif isinstance(original, WriteConflict):
        message = original.detail
    elif code in _MESSAGES:
        message = _MESSAGES[code]
    else:
        message = error.message
    extensions = {k: v for k, v in (error.extensions or {}).items() if k != "code"}
    if code == "UPSTREAM_TIMEOUT" or code == "UPSTREAM_UNAVAILABLE":
        extensions["upstream"] = getattr(original, "upstream", None)
    formatted: dict[str, Any] = {"message": message}
    if error.locations:
        formatted["locations"] = [
            {"line": loc.line, "column": loc.column} for loc in error.locations
        ]
    if error.path:
        formatted["path"] = error.path
    formatted["extensions"] = {**extensions, "code": code, "traceId": trace_id}
    return formatted
