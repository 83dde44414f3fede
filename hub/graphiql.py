"""GraphiQL, served by the hub itself: the page at `GET /graphql` (a browser asking for HTML)
and its files under `/graphiql/`, from hub/static/graphiql/ (shipped with the package).

The vendored files (GraphiQL, React, ReactDOM) come from the npm registry at pinned versions,
checked against hub/static/graphiql/lock.json by tools/fetch_graphiql.py; nothing is fetched at
run time, so the IDE works on a closed network. The page names only these files, each with its
sha384 as Subresource Integrity, and its Content-Security-Policy lets it load nothing else and
send requests only to this hub.
"""

from __future__ import annotations

import base64
import hashlib
import json
from functools import cache
from html import escape
from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

__all__ = ["CSP", "FOLDER", "graphiql_asset", "graphiql_page"]

FOLDER = Path(__file__).resolve().parent / "static" / "graphiql"
PREFIX = "/graphiql/"

#: Scripts and styles from this hub only, nothing inline (GraphiQL 3 needs no inline script or
#: style: tests/hub/test_graphiql.py records any violation); its fonts are data: URLs in its
#: stylesheet; requests go to this hub only.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; "
    "font-src 'self' data:; img-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

_TYPES = {".js": "text/javascript", ".css": "text/css", ".txt": "text/plain"}
_OWN = ("hub-graphiql.css", "hub-graphiql.js")  # the hub's, changed with it: revalidated


def _sri(data: bytes) -> str:
    return "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode()


@cache
def _files() -> dict[str, tuple[bytes, str]]:
    """`{name: (content, sri)}` of every file the page may load (the lock's and the hub's)."""
    lock = json.loads((FOLDER / "lock.json").read_text())
    names = [f["as"] for p in lock["packages"].values() for f in p["files"].values()]
    files = {}
    for name in (*names, *_OWN):
        content = (FOLDER / name).read_bytes()
        files[name] = (content, _sri(content))
    return files


def _lock_name(package: str, suffix: str) -> str:
    lock = json.loads((FOLDER / "lock.json").read_text())
    (name,) = (f["as"] for f in lock["packages"][package]["files"].values()
               if f["as"].endswith(suffix))
    return str(name)


@cache
def _page() -> bytes:
    files = _files()

    def script(name: str) -> str:
        return (f'<script src="{PREFIX}{escape(name)}" '
                f'integrity="{files[name][1]}"></script>')

    def style(name: str) -> str:
        return (f'<link rel="stylesheet" href="{PREFIX}{escape(name)}" '
                f'integrity="{files[name][1]}">')

    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>permit-hub GraphiQL</title>
<link rel="icon" href="data:,">
{style(_lock_name("graphiql", ".css"))}
{style("hub-graphiql.css")}
</head>
<body>
<div id="graphiql">Loading…</div>
{script(_lock_name("react", ".js"))}
{script(_lock_name("react-dom", ".js"))}
{script(_lock_name("graphiql", ".js"))}
{script("hub-graphiql.js")}
</body>
</html>
""".encode()


def graphiql_page() -> Response:
    headers = {
        "content-security-policy": CSP,
        "cache-control": "no-cache",
        "x-content-type-options": "nosniff",
        "referrer-policy": "no-referrer",
    }
    return HTMLResponse(_page(), headers=headers)


async def graphiql_asset(request: Request) -> Response:
    """One of the page's files; the vendored ones carry their version in their name, so a
    browser keeps them for a year; the hub's own are revalidated."""
    name = request.path_params["name"]
    found = _files().get(name)
    if found is None:
        return Response(b"not found", status_code=404, media_type="text/plain")
    content, sri = found
    etag = '"' + sri + '"'
    cache_control = "no-cache" if name in _OWN else "public, max-age=31536000, immutable"
    headers = {"cache-control": cache_control, "etag": etag, "x-content-type-options": "nosniff"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    media = _TYPES[Path(name).suffix]
    charset = "; charset=utf-8"
    return Response(content, headers=headers | {"content-type": media + charset})
