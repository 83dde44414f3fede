"""Purpose of use: every data request names why it asks, checked right after the token.

The `X-Purpose-Of-Use` header must name one of the purposes the client is registered for.
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
    if not purpose:
        raise PurposeRequired(f"the {PURPOSE_HEADER} header is required")
    if purpose not in principal.purposes:
        raise PurposeRequired(f"purpose not registered for client {principal.client_id}")
    return purpose
