"""The auditor's console at `/audit/`: server-rendered pages over the audit log, no script.

Sign-in with an `audit:read` client's credentials, the access log as a filterable and paged
table, a subject's timeline (SVG drawn by the server), the chain's state with a background
'verify now', and an evidence checker. Pages, sessions and checks: `hub.console.pages`;
its security headers: `hub.console.headers`. Mounted by `hub.app`.
"""

from __future__ import annotations

from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from hub.console.headers import ConsoleHeaders
from hub.console.pages import BASE, PAGES

__all__ = ["console_routes"]


def console_routes() -> list[BaseRoute]:
    """The console, one mount: its pages and its stylesheet (nothing else is served there)."""
    pages: list[BaseRoute] = [
        Route(path, endpoint, methods=[method]) for path, endpoint, method in PAGES
    ]
    pages.append(Mount("/static", StaticFiles(packages=[("hub.console", "static")])))
    return [Mount(BASE, routes=pages, middleware=[Middleware(ConsoleHeaders)])]
