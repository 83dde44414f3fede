"""What a workflow refuses, in three kinds that `schema.errors` maps to GraphQL codes:

    WorkflowError
    ├── WorkflowRejected    BAD_USER_INPUT: the request is wrong; the client can fix it
    ├── WorkflowConflict    CONFLICT: the request contradicts what a source system holds
    └── OutOfJurisdiction   FORBIDDEN, reason OUT_OF_JURISDICTION: the row is not the client's

Either way nothing was changed. `extensions` is what the client is told besides the message
(graphql-core copies it onto the GraphQL error). No GraphQL import here.
"""

from __future__ import annotations

from typing import Any

__all__ = ["OUT_OF_JURISDICTION", "OutOfJurisdiction", "WorkflowConflict", "WorkflowError",
           "WorkflowRejected"]

OUT_OF_JURISDICTION = "OUT_OF_JURISDICTION"


class WorkflowError(Exception):
    """The request cannot be carried out as asked; nothing was changed."""

    def __init__(self, message: str, **extensions: Any) -> None:
        super().__init__(message)
        self.extensions: dict[str, Any] = extensions


class WorkflowRejected(WorkflowError):
    """The request itself is wrong (a mismatch, a missing precondition, a bad key)."""


class WorkflowConflict(WorkflowError):
    """The request is well formed but contradicts the current state (an illegal transition)."""


class OutOfJurisdiction(WorkflowError):
    """The row (an SSN's, a card's) is in a region the client does not serve; refused before
    anything was written, and for an SSN before any source system was asked."""

    def __init__(self, message: str) -> None:
        super().__init__(message, reason=OUT_OF_JURISDICTION)
