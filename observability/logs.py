"""Structured JSON logs: one object per line with the trace id and client id of the request.

The request's ids travel in context variables set by the request path, so every log line
written while serving it carries them without passing them around. Never log a secret, a
token or a full identity number: `redact` masks anything shaped like a bearer token, a JWT
or an 18-character identifier in messages before they are written.
"""

from __future__ import annotations

import contextvars
import logging
import re
import sys
from typing import Any

import orjson

__all__ = ["JsonFormatter", "bind_request", "configure_logging", "current_client_id", "redact"]

_trace_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("trace_id", default=None)
_client_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("client_id", default=None)

_SECRETS = (
    (re.compile(r"(?i)bearer\s+[A-Za-z0-9._~+/=-]+"), "Bearer [redacted]"),
    (re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*"), "[jwt redacted]"),
    (re.compile(r"\b(\d{6})\d{8,11}([0-9X]{0,1})\b"), r"\1…"),  # permit numbers and SSNs
    (re.compile(r"(?i)(client_secret|password|secret)=\S+"), r"\1=[redacted]"),
)


# One pass that finds whether any of them might match: most lines (the access log's) have none.
# Case-insensitive as a whole, so it finds a superset of what the patterns above replace.
_ANY_SECRET = re.compile(
    "|".join(f"(?:{p.pattern.removeprefix('(?i)')})" for p, _ in _SECRETS), re.IGNORECASE
)
# What each pattern above cannot match without, for ASCII text: "bearer" and "secret=" or
# "password=" in any case, "eyJ" as written, a run of 14 digits (the shortest number masked).
_DIGIT_RUN = re.compile(r"[0-9]{14}")
_WORDS = ("bearer", "secret=", "password=")


def _might_hold_secret(text: str) -> bool:
    """True whenever a pattern of `_SECRETS` matches somewhere in `text` (and at times when
    none does). ASCII text, every access log line, is checked with substring tests, about a
    third of the combined regex's cost; any other text goes through the regex, since Unicode
    case folding (the long s matches "s" there) is the regex's to judge."""
    if not text.isascii():
        return _ANY_SECRET.search(text) is not None
    if "eyJ" in text or _DIGIT_RUN.search(text) is not None:
        return True
    lowered = text.lower()
    return any(word in lowered for word in _WORDS)


def redact(text: str) -> str:
    if not _might_hold_secret(text):
        return text
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


def bind_request(trace_id: str | None, client_id: str | None = None) -> None:
    _trace_id.set(trace_id)
    _client_id.set(client_id)


def current_client_id() -> str | None:
    """The client bound to the request being served (None before the gate admits it)."""
    return _client_id.get()


def _message(record: logging.LogRecord) -> str:
    """The record's message; an access log line without the request's query string, which a
    `GET /graphql` fills with its document and variables (identity numbers, names)."""
    args = record.args
    if record.name == "uvicorn.access" and isinstance(args, tuple) and len(args) == 5:
        path = args[2]
        if isinstance(path, str) and "?" in path:
            shown = path.split("?", 1)[0] + "?[query omitted]"
            return str(record.msg) % (*args[:2], shown, *args[3:])
    return record.getMessage()


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(_message(record)),
            "trace_id": _trace_id.get(),
            "client_id": _client_id.get(),
        }
        if record.exc_info and record.exc_info[0] is not None:
            entry["error"] = record.exc_info[0].__name__
            entry["stack"] = redact(self.formatException(record.exc_info))  # operators only
        return orjson.dumps(entry).decode()


def configure_logging(level: str = "INFO") -> None:
    # The logging HOWTO's "Optimization": the formatter writes none of the caller's file and
    # line, thread or process, so do not collect them for every record (the access log's).
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
