"""Purpose of use: every data request names why it asks, checked right after the token.

The `X-Purpose-Of-Use` header must name one of the purposes the client is registered for; the
refusal lists those (the client's own registration, safe to show), so that an agency learns
what to send. What each purpose lets a request run is the purpose registry's
(`auth.purposes`), checked on the document by the hub.
Never: accept a purpose the registry does not list for this client, or echo an arbitrary header
value back in an error (it is attacker-controlled).
"""

from __future__ import annotations

from auth.errors import PurposeRequired
from auth.principal import TokenClaims

__all__ = ["PURPOSE_HEADER", "purpose_of_use"]

PURPOSE_HEADER = "X-Purpose-Of-Use"


def purpose_of_use(principal: TokenClaims, header_value: str | None) -> str:
    """The purpose named in the header, if the principal may use it; else PurposeRequired."""
    purpose = (header_value or "").strip()
    allowed = tuple(sorted(principal.purposes))
    may_use = f"client {principal.client_id} may use: {', '.join(allowed)}"
    if not purpose:
        raise PurposeRequired(f"the {PURPOSE_HEADER} header is required; {may_use}", allowed)
    if purpose not in principal.purposes:
        raise PurposeRequired(f"purpose not registered for this client; {may_use}", allowed)
    return purpose
