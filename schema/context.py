"""The per-request context: everything a resolver may use, built once per request, never global."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field

from connectors.records import Permit
from observability.audit import AuditLog
from schema.loaders import Loaders, Sources, note_permits
from schema.rows import RowGuard
from schema.subjects import Touched

__all__ = ["HubContext"]


@dataclass(slots=True)
class HubContext:
    loaders: Loaders
    sources: Sources  # for workflows that write, or that need more than a load (QR keys)
    today: dt.date
    touched: Touched = field(default_factory=Touched)
    audit: AuditLog | None = None
    # The client's region prefixes (`infra.regions`); empty: no bound row (deny by default).
    jurisdiction: tuple[str, ...] = ()
    # The caller's jurisdiction when this request's rows are bound (`schema.rows`); None when
    # nothing it selects is (a national client, or only national fields selected).
    rows: RowGuard | None = None
    # The person a SUBJECT token names (a foreigner, through the e-SSC app): whose own data
    # `myAccessLog` answers; None for everyone else.
    person: str | None = None

    @classmethod
    def for_request(
        cls,
        sources: Sources,
        today: dt.date,
        audit: AuditLog | None = None,
        known: Mapping[str, Permit] | None = None,
        rows: RowGuard | None = None,
        *,
        jurisdiction: tuple[str, ...] = (),
        person: str | None = None,
    ) -> HubContext:
        """`known`: permits already read for this request; its permit loader starts with them
        (and they count as read, for the audit record)."""
        touched = Touched()
        loaders = Loaders.for_request(sources, touched)
        if known:
            loaders.permit.prime_many(dict(known))
            note_permits(touched, known)
        return cls(
            loaders=loaders, sources=sources, today=today, touched=touched, audit=audit,
            jurisdiction=jurisdiction,
            rows=rows,
            person=person,
        )
