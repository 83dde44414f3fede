"""The audit event of one access, whichever door it came in by (POST /graphql, the permit
events route, a GraphQL subscription): who, for what purpose, from where, and a digest of what
was answered. Every such event is appended before the answer is released."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

from auth import Principal
from observability.audit import AuditEvent, Kind, Outcome

__all__ = ["access_event"]


def access_event(
    kind: Kind,
    outcome: Outcome | str,
    *,
    principal: Principal | None,
    trace_id: str,
    client_address: str | None,
    body: bytes,
    purpose: str | None = None,
    **fields: Any,
) -> AuditEvent:
    """`fields`: the rest of `AuditEvent` (operation, fields, subjects, error codes...)."""
    return AuditEvent(
        time=dt.datetime.now(dt.UTC),
        kind=kind,
        outcome=outcome,  # type: ignore[arg-type]  # AuditEvent checks it
        client_id=principal.client_id if principal else None,
        agency=principal.agency if principal else None,
        purpose=purpose,
        trace_id=trace_id,
        client_address=client_address,
        response_sha256=hashlib.sha256(body).hexdigest(),
        embargoed_until=principal.embargoed_until if principal else None,
        **fields,
    )
