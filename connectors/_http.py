"""The one place where httpx exceptions become connector errors (as httpx maps httpcore's)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from connectors.errors import UpstreamTimeout, UpstreamUnavailable, WriteConflict

_MAX_DETAIL = 200


@contextmanager
def map_http_errors(upstream: str) -> Iterator[None]:
    """Translate transport failures, error statuses and undecodable bodies for `upstream`.

    HTTP 409 is the source system refusing a write because of what it holds (nothing changed):
    a `WriteConflict`, whose detail the client will read.
    """
    try:
        yield
    except httpx.TimeoutException:
        raise UpstreamTimeout(upstream, "no answer within the timeout") from None
    except httpx.HTTPStatusError as exc:
        if exc.response.status_code == 409:
            raise WriteConflict(upstream, _conflict_detail(exc.response)) from None
        raise UpstreamUnavailable(upstream, f"answered HTTP {exc.response.status_code}") from None
    except (httpx.TransportError, httpx.DecodingError):
        raise UpstreamUnavailable(upstream, "connection failed") from None
    except (ValueError, KeyError, TypeError, AttributeError):  # a body of the wrong shape
        raise UpstreamUnavailable(upstream, "answered a malformed body") from None


def _conflict_detail(response: httpx.Response) -> str:
    """The `detail` of a JSON error body, if it has a short one."""
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    if isinstance(detail, str) and 0 < len(detail) <= _MAX_DETAIL and detail.isprintable():
        return detail
    return "the write conflicts with the data the source system holds"


def new_http_client(timeout_seconds: float, max_connections: int) -> httpx.AsyncClient:
    """A pooled client shared by every HTTP connector of one hub process."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout_seconds),
        limits=httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        ),
        headers={"user-agent": "permit-hub"},
    )
