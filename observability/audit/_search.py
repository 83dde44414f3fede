"""Searching the log: the auditors' `accessLog` and the data tracker's subject view.

Newest first (descending seq): both an auditor and a person asking "who looked at my data" start
from what happened last. Cursors are opaque (`base64url("v1:<seq>")`) and stable while records
are appended, since a page is "records before this seq". The subject view hides records written
while the client was embargoed (public-security investigations) until the embargo date has
passed; the auditor view never hides anything.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import Select, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from observability.audit._errors import AuditQueryError
from observability.audit._records import AuditRecord, Outcome, record_from_row
from observability.audit._tables import records, subjects

__all__ = ["MAX_PAGE", "AuditFilter", "AuditPage", "search_records"]

MAX_PAGE = 500


@dataclass(frozen=True)
class AuditFilter:
    """All set fields must match; `time_from` is inclusive, `time_to` exclusive. `any_subject`:
    records naming at least one of these (one person's identifiers: the data tracker)."""

    subject: str | None = None
    any_subject: tuple[str, ...] | None = None
    client_id: str | None = None
    agency: str | None = None
    purpose: str | None = None
    operation: str | None = None
    outcome: Outcome | None = None
    trace_id: str | None = None
    actor: str | None = None
    actor_kind: str | None = None
    case_reference: str | None = None
    time_from: datetime | None = None
    time_to: datetime | None = None


@dataclass(frozen=True)
class AuditPage:
    """One page, newest first; `cursors[i]` is the cursor of `records[i]`."""

    records: tuple[AuditRecord, ...]
    cursors: tuple[str, ...]
    end_cursor: str | None
    has_next_page: bool


def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"v1:{seq}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        version, seq = raw.split(":", 1)
        if version != "v1":
            raise ValueError(version)
        return int(seq)
    except (ValueError, UnicodeDecodeError, binascii.Error) as exc:
        raise AuditQueryError(f"invalid cursor {cursor!r}") from exc


def _filtered(query: Select[tuple[object, ...]], where: AuditFilter) -> Select[tuple[object, ...]]:
    equal = {
        "client_id": where.client_id, "agency": where.agency, "purpose": where.purpose,
        "operation": where.operation, "outcome": where.outcome, "trace_id": where.trace_id,
        "actor": where.actor, "actor_kind": where.actor_kind,
        "case_reference": where.case_reference,
    }
    for name, value in equal.items():
        if value is not None:
            query = query.where(records.c[name] == value)
    if where.subject is not None:
        query = query.join(subjects, subjects.c.seq == records.c.seq).where(
            subjects.c.subject == where.subject
        )
    if where.any_subject is not None:
        named = select(subjects.c.seq).where(subjects.c.subject.in_(where.any_subject))
        query = query.where(records.c.seq.in_(named))
    if where.time_from is not None:
        query = query.where(records.c.time >= _utc(where.time_from))
    if where.time_to is not None:
        query = query.where(records.c.time < _utc(where.time_to))
    return query


def _unstorable(where: AuditFilter) -> bool:
    """Does a filter name a text no record can hold? (A NUL: PostgreSQL refuses the query.)"""
    texts = (
        where.subject, where.client_id, where.agency, where.purpose, where.operation,
        where.trace_id, where.actor, where.actor_kind, where.case_reference,
    )
    return any(text is not None and "\x00" in text for text in texts) or any(
        "\x00" in text for text in where.any_subject or ()
    )


def _utc(value: datetime) -> datetime:
    """Stored times are UTC (SQLite keeps no offset), so compare in UTC; naive means UTC."""
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


async def search_records(
    engine: AsyncEngine,
    where: AuditFilter,
    first: int,
    after: str | None,
    *,
    subject_view: bool,
    today: date,
) -> AuditPage:
    if not 1 <= first <= MAX_PAGE:
        raise AuditQueryError(f"first must be between 1 and {MAX_PAGE}")
    if _unstorable(where):
        return AuditPage((), (), None, False)
    query = _filtered(select(records), where).order_by(records.c.seq.desc()).limit(first + 1)
    if after is not None:
        query = query.where(records.c.seq < decode_cursor(after))
    if subject_view:
        query = query.where(
            or_(records.c.embargoed_until.is_(None), records.c.embargoed_until <= today)
        )
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).mappings().all()
    found = tuple(record_from_row(row) for row in rows[:first])
    cursors = tuple(encode_cursor(record.seq) for record in found)
    return AuditPage(found, cursors, cursors[-1] if cursors else None, len(rows) > first)
