"""Reading an urlencoded form body: bounded in size and fields, no repeated field.

The OAuth endpoints (`auth.server`) and the auditor's console (`hub.console`) both take forms;
this reader refuses, with a message fit to show the sender, a wrong content type, a body over
`max_bytes` (stopped as soon as it is exceeded, never read whole), more than `max_fields`
fields, bytes that are not UTF-8, and a field given twice (which of two values counts is a
question a form should never leave open).
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.requests import Request

__all__ = ["FORM_CONTENT_TYPE", "BadForm", "read_form"]

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"


class BadForm(Exception):
    """A form refused; the message says why."""


async def read_form(request: Request, *, max_bytes: int, max_fields: int) -> dict[str, str]:
    """The form of `request`, each field once."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != FORM_CONTENT_TYPE:
        raise BadForm(f"the form must be sent as {FORM_CONTENT_TYPE}")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise BadForm(f"the form is larger than {max_bytes} bytes")
    try:
        pairs = parse_qsl(
            body.decode("utf-8"), keep_blank_values=True, max_num_fields=max_fields
        )
    except (UnicodeDecodeError, ValueError):
        raise BadForm(f"the form is malformed (or has more than {max_fields} fields)") from None
    form = dict(pairs)
    if len(form) != len(pairs):
        raise BadForm("a field is repeated")
    return form
