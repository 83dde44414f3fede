"""Connector errors. Nothing above `connectors/` ever sees an httpx or sqlalchemy exception.

    ConnectorError
    ├── UpstreamUnavailable     the source system refused, reset, failed or answered nonsense
    │   └── RegionNotServed     no agency database is configured for that region
    ├── UpstreamTimeout         the source system did not answer in time
    └── WriteConflict           a write contradicts what the source system holds (nothing changed)
        └── PersonEnrolled      the person already has an active enrollment at that agency
"""

from __future__ import annotations

__all__ = [
    "ConnectorError",
    "PersonEnrolled",
    "RegionNotServed",
    "UpstreamTimeout",
    "UpstreamUnavailable",
    "WriteConflict",
]


class ConnectorError(Exception):
    """Base of every error a connector raises."""

    def __init__(self, upstream: str, detail: str) -> None:
        super().__init__(f"{upstream}: {detail}")
        self.upstream = upstream
        self.detail = detail


class UpstreamUnavailable(ConnectorError):
    """The source system could not serve the request."""


class RegionNotServed(UpstreamUnavailable):
    """No agency database is configured for the region."""


class UpstreamTimeout(ConnectorError):
    """The source system did not answer within its timeout."""


class WriteConflict(ConnectorError):
    """The write was refused because of data already there; the transaction was rolled back."""


class PersonEnrolled(WriteConflict):
    """The agency already holds an active enrollment of the person (in `region`)."""

    def __init__(self, upstream: str, region: str) -> None:
        super().__init__(upstream, "the person already has an active enrollment in the region")
        self.region = region
