"""Errors of the audit package.

    AuditError                  anything the audit log refuses or cannot do
    ├── AuditUnavailable        the store cannot be reached or did not commit: release no data
    └── AuditQueryError         a search the caller got wrong (bad cursor, page size)

Nothing above this package ever sees a SQLAlchemy or driver exception: `_store.translated`
turns them into `AuditUnavailable` at the boundary.
"""

from __future__ import annotations

__all__ = ["AuditError", "AuditQueryError", "AuditUnavailable"]


class AuditError(Exception):
    """Base class of the audit log's errors."""


class AuditUnavailable(AuditError):
    """The audit store did not durably commit the record: the response must not be released."""


class AuditQueryError(AuditError, ValueError):
    """A search request the caller got wrong (unknown cursor, page size out of range)."""
