"""The one place where httpx exceptions become connector errors (as httpx maps httpcore's)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from connectors.errors import UpstreamTimeout, UpstreamUnavailable


@contextmanager
def map_http_errors(upstream: str) -> Iterator[None]:
    """Translate transport failures, error statuses and undecodable bodies for `upstream`."""
    try:
        yield
    except httpx.TimeoutException:
        raise UpstreamTimeout(upstream, "no answer within the timeout") from None
    except httpx.HTTPStatusError as exc:
        raise UpstreamUnavailable(upstream, f"answered HTTP {exc.response.status_code}") from None
    except (httpx.TransportError, httpx.DecodingError):
        raise UpstreamUnavailable(upstream, "connection failed") from None
    except (ValueError, KeyError, TypeError):
        raise UpstreamUnavailable(upstream, "answered a malformed body") from None


def new_http_client(timeout_seconds: float, max_connections: int) -> httpx.AsyncClient:
    """A pooled client shared by every HTTP connector of one hub process."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout_seconds),
        limits=httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        ),
        headers={"user-agent": "permit-hub"},
    )
