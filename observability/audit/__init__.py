"""The audit log: one append-only, hash-chained, signed record per access to the hub.

One record per GraphQL request, token issuance or refusal, administrative action and read of the
log itself, in the hub database (`audit_metadata`). It holds identifiers only (client, agency,
purpose, subjects touched, field paths, hashes), never the data that was sent.

Design: ONE serialized chain for every hub instance. Each record's hash covers the previous
record's hash and its own canonical JSON, so any edit, deletion, insertion or reordering breaks
the chain at that seq. Instances append in transactions that lock the single chain-head row
(`SELECT ... FOR UPDATE` on PostgreSQL, `BEGIN IMMEDIATE` on SQLite). We prefer this to one
chain per instance because a single total order is what an auditor can check with one pass and no
knowledge of how many instances ran (per-instance chains need the instance list to be trusted,
and a vanished instance's chain looks just like a deleted one); and the lock is cheap because it
is taken once per *batch*: group commit gathers the appends of concurrent requests of a process
into one transaction, so many requests pay for one lock and one commit.

Deleting the tail is caught by the head row and by signed checkpoints (a JWS with the hub's key
over `(seq, head hash, time)`, every `checkpoint_every` records or `checkpoint_seconds`). Someone
able to rewrite the database *and* sign with the hub's key defeats any log kept there; the
evidence that each agency keeps with every response (its claims, their Merkle path and the
batch's signed root) and exported checkpoints are the copies held outside the hub.

No audit, no data: `AuditLog.append` returns only after the commit (`append_with_evidence` only
after the commit and its batch's signature); on any storage or signing failure it raises
`AuditUnavailable` and the hub releases nothing (`INTERNAL`, HTTP 503). A commit whose
acknowledgement is lost may still have stored the record: the log can hold a record for a
response that was never released, never the reverse.

No one request can fail another's: every text of an event is bounded when it is made
(`_bounds`: control characters replaced, each field capped at its column's width), and a batch the
store still refuses for a record's content is committed in halves until the record(s) at fault
fail alone (`AuditRejected`, an `AuditUnavailable`) and the rest commit.

Never: import hub, schema, auth or connectors; store response bodies or personal data beyond
identifiers; update or delete a record.
"""

from __future__ import annotations

from observability.audit._errors import (
    AuditError,
    AuditQueryError,
    AuditRejected,
    AuditUnavailable,
)
from observability.audit._evidence import (
    EvidenceCheck,
    EvidenceClaims,
    ProofCheck,
    check_evidence,
    check_proof,
)
from observability.audit._export import ExportFormat
from observability.audit._log import AuditLog, AuditStats, Evidenced
from observability.audit._records import AuditEvent, AuditRecord, Kind, Outcome
from observability.audit._search import AuditFilter, AuditPage
from observability.audit._signing import LocalSigner, Signer
from observability.audit._tables import audit_metadata
from observability.audit._verify import VerifyResult

__all__ = [
    "AuditError",
    "AuditEvent",
    "AuditFilter",
    "AuditLog",
    "AuditPage",
    "AuditQueryError",
    "AuditRecord",
    "AuditRejected",
    "AuditStats",
    "AuditUnavailable",
    "EvidenceCheck",
    "EvidenceClaims",
    "Evidenced",
    "ExportFormat",
    "Kind",
    "LocalSigner",
    "Outcome",
    "ProofCheck",
    "Signer",
    "VerifyResult",
    "audit_metadata",
    "check_evidence",
    "check_proof",
]
