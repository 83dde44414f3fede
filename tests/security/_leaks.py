"""What no response body may ever contain: stacks, paths, driver names, upstream addresses."""

from __future__ import annotations

import httpx

LEAKS = (
    "Traceback",
    'File "',
    "/work/",
    '.py"',
    ".py:",
    "sqlalchemy",
    "asyncpg",
    "aiosqlite",
    "httpx",
    "redis.",
    "sqlite3",
)


def assert_safe_error(response: httpx.Response, *upstreams: str) -> str:
    """The response is JSON with a typed error, no 500, nothing internal; returns the code."""
    assert response.status_code < 500, response.text[:500]
    text = response.text
    for leak in (*LEAKS, *upstreams):
        assert leak.lower() not in text.lower(), (leak, text[:500])
    assert response.headers["content-type"].startswith("application/json")
    code: str = response.json()["errors"][0]["extensions"]["code"]
    return code
