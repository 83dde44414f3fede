"""Which failures of an append are the records' fault, not the store's.

A batch whose transaction failed because the database refused a value (SQLSTATE class 22,
data exception: a NUL, a value longer than its column; class 23, a constraint) or because a
record could not even be encoded (a lone surrogate) wrote nothing and left the connection
usable: it can be retried in parts, to find the record at fault and commit the others. Any
other failure (a lost connection, a timeout) says nothing about the records, and a commit
whose answer was lost may have landed, so it fails the batch as a whole.

Never: call a failure of the store a rejection (a batch would be bisected into many more
failing transactions while the database is down).
"""

from __future__ import annotations

import asyncpg
from sqlalchemy.exc import DataError, IntegrityError

from observability.audit._errors import AuditRejected

__all__ = ["rejection_of"]

_REFUSED_BY_DATABASE = (
    asyncpg.exceptions.DataError,
    asyncpg.exceptions.IntegrityConstraintViolationError,
    DataError,
    IntegrityError,
)
# Raised while encoding a record (orjson's JSONEncodeError is a TypeError), before anything
# is sent to the database.
_UNENCODABLE = (TypeError, UnicodeError)


def rejection_of(exc: BaseException) -> AuditRejected | None:
    """An `AuditRejected` if `exc` is the records' fault (see the module), else None."""
    if isinstance(exc, AuditRejected):
        return exc
    if isinstance(exc, _REFUSED_BY_DATABASE + _UNENCODABLE):
        state = getattr(exc, "sqlstate", None)  # asyncpg's
        detail = f"{type(exc).__name__}" + (f" (SQLSTATE {state})" if state else "")
        rejected = AuditRejected(f"audit store refused a record: {detail}")
        rejected.__cause__ = exc
        return rejected
    return None
