"""The authenticated caller, as every later step of the request path sees it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

__all__ = ["Principal"]


@dataclass(frozen=True)
class Principal:
    """Who is calling, for which agency, with which scopes and allowed purposes.

    `scopes` are the token's scopes capped by the client's current registration, so that
    narrowing a client's scopes takes effect at once on tokens already issued.
    """

    client_id: str
    agency: str
    scopes: frozenset[str]
    purposes: frozenset[str]
    token_id: str
    expires_at: int
    issuer: str
    embargoed_until: date | None = None

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes
