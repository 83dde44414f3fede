"""The hub's OAuth scopes, one per kind of data or operation. Any other is refused at registration.

Which field each scope opens is decided in `schema.policy`. The person scopes (`self:*`) are
only ever issued in a token that names the person (token exchange with a subject identity
provider, `auth.exchange`); no field is open to them yet, so such a token reads nothing.
"""

from __future__ import annotations

__all__ = ["PERSON_SCOPES", "SCOPES"]

# A foreigner's own data, through an app acting for them: never in a system token.
PERSON_SCOPES: frozenset[str] = frozenset({"self:read", "self:subscribe"})

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
        *PERSON_SCOPES,
    }
)
