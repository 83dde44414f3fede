"""What a workflow refuses, in two kinds that `schema.errors` maps to GraphQL codes:

    WorkflowError
    ├── WorkflowRejected    BAD_USER_INPUT: the request is wrong; the client can fix it
    └── WorkflowConflict    CONFLICT: the request contradicts what a source system holds

Either way nothing was changed. No GraphQL import here.
"""

from __future__ import annotations

__all__ = ["WorkflowConflict", "WorkflowError", "WorkflowRejected"]


class WorkflowError(Exception):
    """The request cannot be carried out as asked; nothing was changed."""


class WorkflowRejected(WorkflowError):
    """The request itself is wrong (a mismatch, a missing precondition, a bad key)."""


class WorkflowConflict(WorkflowError):
    """The request is well formed but contradicts the current state (an illegal transition)."""
