"""Errors of the audit package.

    AuditError                  anything the audit log refuses or cannot do
    ├── AuditUnavailable        the store cannot be reached or did not commit: release no data
    │   └── AuditRejected       the store refused this record's content (nothing was written)
    └── AuditQueryError         a search the caller got wrong (bad cursor, page size)

Nothing above this package ever sees a SQLAlchemy or driver exception: `_store.translated`
turns them into `AuditUnavailable` at the boundary.
"""

from __future__ import annotations

__all__ = ["AuditError", "AuditQueryError", "AuditRejected", "AuditUnavailable"]


class AuditError(Exception):
    """Base class of the audit log's errors."""


class AuditUnavailable(AuditError):
    """The audit store did not durably commit the record: the response must not be released."""


class AuditRejected(AuditUnavailable):
    """The store refused the content of a batch's record(s), and rolled the batch back.

    Nothing was written, so the batch can be retried in parts: the group committer isolates the
    record(s) at fault, which fail alone, and commits the others.
    """


class AuditQueryError(AuditError, ValueError):
    """A search request the caller got wrong (unknown cursor, page size out of range)."""
