"""What a workflow refuses, in two kinds that `schema.errors` maps to GraphQL codes:

    WorkflowError
    ├── WorkflowRejected    BAD_USER_INPUT: the request is wrong; the client can fix it
    ├── OutOfJurisdiction   FORBIDDEN (reason OUT_OF_JURISDICTION): the row is not the client's
    └── WorkflowConflict    CONFLICT: the request contradicts what a source system holds
        └── AlreadyEnrolled     the person has a live enrollment (extensions.existingRegion)

Either way nothing was changed. No GraphQL import here: an error's `extensions` (a plain dict)
are adopted by the GraphQL error that wraps it, next to the code `schema.errors` gives it.
"""

from __future__ import annotations

__all__ = [
    "AlreadyEnrolled",
    "OutOfJurisdiction",
    "WorkflowConflict",
    "WorkflowError",
    "WorkflowRejected",
]


class WorkflowError(Exception):
    """The request cannot be carried out as asked; nothing was changed."""


class WorkflowRejected(WorkflowError):
    """The request itself is wrong (a mismatch, a missing precondition, a bad key)."""


class WorkflowConflict(WorkflowError):
    """The request is well formed but contradicts the current state (an illegal transition)."""


class OutOfJurisdiction(WorkflowError):
    """The row the request names is in a region the client's jurisdiction does not cover."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.extensions = {"reason": "OUT_OF_JURISDICTION"}


class AlreadyEnrolled(WorkflowConflict):
    """The person already has a live enrollment (or one being made) in `existing_region`."""

    def __init__(self, existing_region: str) -> None:
        super().__init__(
            f"the person already has an active enrollment (or one being made) in region "
            f"{existing_region}; one person has one live enrollment nationally"
        )
        self.existing_region = existing_region
        self.extensions = {"existingRegion": existing_region}
