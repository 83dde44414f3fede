"""Cross-agency workflows: plain async functions over connector protocols, no GraphQL here.

Resolvers translate between GraphQL and these functions; errors the caller can fix are
`WorkflowRejected` (BAD_USER_INPUT), contradictions of a source system's state are
`WorkflowConflict` (CONFLICT), both mapped in `schema.errors`.
"""

from schema.workflows.enrollment import (
    EnrollmentRequest,
    EnrollmentResult,
    WorkflowRejected,
    register_enrollment,
)
from schema.workflows.qr import QrCheck, QrReason, verify_permit_qr

__all__ = [
    "EnrollmentRequest",
    "EnrollmentResult",
    "QrCheck",
    "QrReason",
    "WorkflowRejected",
    "register_enrollment",
    "verify_permit_qr",
]
