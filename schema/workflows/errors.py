"""What a workflow refuses, in three kinds that `schema.errors` maps to GraphQL codes:

    WorkflowError
    ├── WorkflowRejected    BAD_USER_INPUT: the request is wrong; the client can fix it
    ├── WorkflowNotFound    NOT_FOUND: a well-formed identifier names nothing the source holds
    ├── WorkflowConflict    CONFLICT: the request contradicts what a source system holds
    │   ├── AlreadyEnrolled     the person has a live enrollment (extensions.existingRegion)
    │   └── KeyReused           the idempotency key was used for another request
    └── OutOfJurisdiction   FORBIDDEN, reason OUT_OF_JURISDICTION: the row is not the client's

Either way nothing was changed. `extensions` is what the client is told besides the message
(graphql-core copies it onto the GraphQL error, next to the code). No GraphQL import here.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "OUT_OF_JURISDICTION",
    "AlreadyEnrolled",
    "KeyReused",
    "OutOfJurisdiction",
    "WorkflowConflict",
    "WorkflowError",
    "WorkflowNotFound",
    "WorkflowRejected",
]

OUT_OF_JURISDICTION = "OUT_OF_JURISDICTION"


class WorkflowError(Exception):
    """The request cannot be carried out as asked; nothing was changed."""

    def __init__(self, message: str, **extensions: Any) -> None:
        super().__init__(message)
        self.extensions: dict[str, Any] = extensions


class WorkflowRejected(WorkflowError):
    """The request itself is wrong (a mismatch, a missing precondition, a bad key)."""


class WorkflowNotFound(WorkflowError):
    """The thing to act on (a card, by its number) does not exist: the identifier is well
    formed, so this is not bad input, and nothing was changed."""


class WorkflowConflict(WorkflowError):
    """The request is well formed but contradicts the current state (an illegal transition)."""


class OutOfJurisdiction(WorkflowError):
    """The row (a permit's, an SSN's, a card's) is in a region the client does not serve;
    refused before anything was written, and where the identifier tells, before any source
    system was asked."""

    def __init__(self, message: str) -> None:
        super().__init__(message, reason=OUT_OF_JURISDICTION)


class AlreadyEnrolled(WorkflowConflict):
    """The person already has a live enrollment (or one being made) in `existing_region`."""

    def __init__(self, existing_region: str) -> None:
        super().__init__(
            f"the person already has an active enrollment (or one being made) in region "
            f"{existing_region}; one person has one live enrollment nationally",
            existingRegion=existing_region,
        )
        self.existing_region = existing_region


class KeyReused(WorkflowConflict):
    """The idempotency key was used for another request (`what`: as the client knows it, "card
    application", "enrollment request"); decided before anything else the input says."""

    def __init__(self, what: str) -> None:
        super().__init__(f"this idempotencyKey was used for another {what}; nothing was changed")
