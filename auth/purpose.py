"""Purpose of use: every data request names why it asks, checked right after the token.

The `X-Purpose-Of-Use` header must name one of the purposes the client is registered for; the
refusal lists those (the client's own registration, safe to show), so that an agency learns
what to send. What each purpose lets a request run is the purpose registry's
(`auth.purposes`), checked on the document by the hub.
Never: accept a purpose the registry does not list for this client, or echo an arbitrary header
value back in an error (it is attacker-controlled).
"""

from __future__ import annotations

import re

from auth.errors import CaseReferenceRequired, OfficerRequired, PurposeRequired
from auth.principal import TokenClaims

__all__ = ["CASE_HEADER", "PURPOSE_HEADER", "case_reference_of", "purpose_of_use"]

CASE_HEADER = "X-Case-Reference"
# A case reference as agencies write them: printable ASCII without spaces at either end, at
# most 64 characters (the audit record's column); anything else is refused, never recorded.
_CASE = re.compile(r"[!-~](?:[ -~]{0,62}[!-~])?")

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


def case_reference_of(principal: TokenClaims, purpose: str, header_value: str | None) -> str | None:
    """The case the request names (`X-Case-Reference`), to be recorded with it.

    A purpose marked `needs_officer` refuses a token with no officer behind it
    (OFFICER_REQUIRED) and a request that names no case (CASE_REFERENCE_REQUIRED); any
    purpose refuses a header that is not a case reference (CASE_REFERENCE_REQUIRED)."""
    case = (header_value or "").strip() or None
    if case is not None and not _CASE.fullmatch(case):
        raise CaseReferenceRequired(
            f"{CASE_HEADER} must be 1 to 64 printable ASCII characters"
        )
    if purpose not in principal.officer_purposes:
        return case or None
    if principal.actor_kind != "OFFICER":
        raise OfficerRequired(
            f"purpose {purpose} needs an officer's token (token exchange with the agency's "
            "identity provider); this token has no officer behind it"
        )
    if not case:
        raise CaseReferenceRequired(f"purpose {purpose} needs the {CASE_HEADER} header")
    return case
