"""The per-request context: everything a resolver may use, built once per request, never global."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from observability.audit import AuditLog
from schema.loaders import Loaders, Sources
from schema.subjects import Touched

__all__ = ["HubContext"]


@dataclass(slots=True)
class HubContext:
    loaders: Loaders
    sources: Sources  # for workflows that write, or that need more than a load (QR keys)
    today: dt.date
    touched: Touched = field(default_factory=Touched)
    audit: AuditLog | None = None

    @classmethod
    def for_request(
        cls, sources: Sources, today: dt.date, audit: AuditLog | None = None
    ) -> HubContext:
        touched = Touched()
        loaders = Loaders.for_request(sources, touched)
        return cls(
            loaders=loaders, sources=sources, today=today, touched=touched, audit=audit
        )
