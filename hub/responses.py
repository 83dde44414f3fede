"""JSON responses rendered with orjson (several times faster than the standard library)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

__all__ = ["JSONResponse", "error_response"]


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)


def error_response(
    status: int, code: str, message: str, trace_id: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = {"errors": [{"message": message, "extensions": {"code": code, "traceId": trace_id}}]}
    return JSONResponse(body, status_code=status, headers=headers)
