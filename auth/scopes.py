"""The hub's OAuth scopes, one per kind of data or operation. Any other is refused at registration.

Which field each scope opens is decided in `schema.policy`.
"""

from __future__ import annotations

__all__ = ["SCOPES"]

SCOPES: frozenset[str] = frozenset(
    {
        "permit:validity",
        "permit:holder",
        "permit:detail",
        "person:identity",
        "enrollment:read",
        "enrollment:write",
        "card:status",
        "card:read",
        "card:write",
        "audit:read",
        "audit:subject",  # the data tracker: accesses to one subject, embargoes applied
        "events:publish",
        "events:subscribe",
        "ops:read",  # /metrics and /readyz's detail, from outside HUB_OPERATIONS_ALLOWED
    }
)
