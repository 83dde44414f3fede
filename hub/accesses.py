"""The audit event of one access, whichever door it came in by (POST /graphql, the permit
events route, a GraphQL subscription): who, for what purpose, from where, and a digest of what
was answered. Every such event is appended before the answer is released.

"From where" is the peer's IP address, or the client's as a proxy in `HUB_TRUSTED_PROXIES`
forwarded it (uvicorn rewrites the peer then); anything that is not an IP address is recorded
as unknown (None), never as the text it was. Built by `hub.gate.Caller`, recorded by
`hub.release` (docs/architecture.md).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
from typing import Any

from auth import TokenClaims
from observability.audit import AuditEvent, Kind, Outcome

__all__ = ["access_event", "client_address_of"]


def access_event(
    kind: Kind,
    outcome: Outcome | str,
    *,
    principal: TokenClaims | None,
    trace_id: str,
    client_address: str | None,
    body: bytes,
    purpose: str | None = None,
    client_id: str | None = None,
    case_reference: str | None = None,
    **fields: Any,
) -> AuditEvent:
    """`fields`: the rest of `AuditEvent` (operation, fields, subjects, error codes...).
    `client_id`: the client when there is no principal (a disabled client's token).
    The person behind the token (`actor`, `actor_kind`: SYSTEM for a client's own token) and
    the case it named (`case_reference`, checked by the gate) are recorded with it."""
    return AuditEvent(
        time=dt.datetime.now(dt.UTC),
        kind=kind,
        outcome=outcome,  # type: ignore[arg-type]  # AuditEvent checks it
        client_id=principal.client_id if principal else client_id,
        agency=principal.agency if principal else None,
        purpose=purpose,
        trace_id=trace_id,
        client_address=client_address_of(client_address),
        response_sha256=hashlib.sha256(body).hexdigest(),
        embargoed_until=principal.embargoed_until if principal else None,
        actor=principal.actor if principal else None,
        actor_kind=principal.actor_kind if principal else None,
        case_reference=case_reference,
        **fields,
    )


def client_address_of(host: str | None) -> str | None:
    """`host` as an IP address in its canonical form, or None if it is not one."""
    if not host or len(host) > 64:  # the longest IPv6 text is 45 characters
        return None
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        # A dual-stack socket's IPv4 peer as itself; a zone id is free text: not recorded.
        address = address.ipv4_mapped or ipaddress.IPv6Address(int(address))
    return str(address)
