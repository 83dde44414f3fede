"""The auditor API: access records from the audit log, never the data they describe.

`accessLog` (audit:read) sees everything, embargoed clients included. `subjectAccessLog`
(audit:subject) is the data tracker: who looked at one person's data, when and why, with
records of embargoed clients hidden until their embargo date. The person behind an access
(`actor`, `actorKind`) and the case an officer named (`caseReference`) are the auditor's
(audit:read), and answer null in the data tracker whoever asks.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

import strawberry

from connectors.identifiers import InvalidIdentifier, validate_subject
from observability.audit import AuditFilter, AuditPage, AuditQueryError, AuditRecord
from schema.errors import BadUserInput
from schema.types import Ctx

__all__ = ["AccessEventConnection", "AccessLogFilter", "access_page"]


@strawberry.enum
class AccessOutcome(StrEnum):
    OK = "OK"
    PARTIAL = "PARTIAL"
    DENIED = "DENIED"
    ERROR = "ERROR"


@strawberry.input
class AccessLogFilter:
    subject: strawberry.ID | None = None
    client_id: str | None = None
    agency: str | None = None
    purpose: str | None = None
    operation: str | None = None
    outcome: AccessOutcome | None = None
    trace_id: str | None = None
    actor: str | None = None
    actor_kind: str | None = None
    case_reference: str | None = None
    from_: dt.datetime | None = strawberry.field(default=None, name="from")
    to: dt.datetime | None = None


@strawberry.type
class AccessEvent:
    id: strawberry.ID
    seq: int
    time: dt.datetime
    kind: str
    client_id: str | None
    agency: str | None
    purpose: str | None
    operation: str | None
    document_hash: str | None
    fields: list[str]
    subjects: list[str]
    denied: list[str]
    outcome: AccessOutcome
    error_codes: list[str]
    trace_id: str | None
    client_address: str | None
    response_sha256: str | None
    prev_hash: str
    hash: str
    actor: str | None = None
    actor_kind: str | None = None
    case_reference: str | None = None

    @classmethod
    def of(cls, r: AuditRecord, *, subject_view: bool = False) -> AccessEvent:
        people = {} if subject_view else {
            "actor": r.actor, "actor_kind": r.actor_kind, "case_reference": r.case_reference,
        }
        return cls(
            **people,
            id=strawberry.ID(r.id),
            seq=r.seq,
            time=r.time,
            kind=r.kind,
            client_id=r.client_id,
            agency=r.agency,
            purpose=r.purpose,
            operation=r.operation,
            document_hash=r.document_hash,
            fields=list(r.fields),
            subjects=list(r.subjects),
            denied=list(r.denied),
            outcome=AccessOutcome(r.outcome),
            error_codes=list(r.error_codes),
            trace_id=r.trace_id,
            client_address=r.client_address,
            response_sha256=r.response_sha256,
            prev_hash=r.prev_hash,
            hash=r.hash,
        )


@strawberry.type
class AccessEventEdge:
    cursor: str
    node: AccessEvent


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class AccessEventConnection:
    edges: list[AccessEventEdge]
    page_info: PageInfo

    @classmethod
    def of(cls, page: AuditPage, *, subject_view: bool = False) -> AccessEventConnection:
        edges = [
            AccessEventEdge(cursor=c, node=AccessEvent.of(r, subject_view=subject_view))
            for r, c in zip(page.records, page.cursors, strict=True)
        ]
        info = PageInfo(has_next_page=page.has_next_page, end_cursor=page.end_cursor)
        return cls(edges=edges, page_info=info)


def _audit_filter(where: AccessLogFilter | None) -> AuditFilter:
    if where is None:
        return AuditFilter()
    return AuditFilter(
        subject=str(where.subject) if where.subject else None,
        client_id=where.client_id,
        agency=where.agency,
        purpose=where.purpose,
        operation=where.operation,
        outcome=where.outcome.value if where.outcome else None,
        trace_id=where.trace_id,
        actor=where.actor,
        actor_kind=where.actor_kind,
        case_reference=where.case_reference,
        time_from=where.from_,
        time_to=where.to,
    )


async def access_page(
    info: Ctx, where: AccessLogFilter | None, first: int, after: str | None, *, subject_view: bool
) -> AccessEventConnection:
    audit = info.context.audit
    assert audit is not None, "the hub wires the audit log into every request context"
    if where is not None and where.subject:
        try:
            subject = validate_subject(str(where.subject))
        except InvalidIdentifier as exc:
            raise BadUserInput(f"filter.subject: {exc}") from None
        info.context.touched.subjects_read.add(subject)
    try:
        page = await audit.search(
            _audit_filter(where), first, after, subject_view=subject_view, today=info.context.today
        )
    except AuditQueryError as exc:
        raise BadUserInput(str(exc)) from None
    return AccessEventConnection.of(page, subject_view=subject_view)
