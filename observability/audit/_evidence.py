"""Evidence for the receiving agency, and proofs that a record is in the signed chain.

Evidence format 2 (the value of the `X-Hub-Evidence` response header). The hub signs once per
audit commit batch, not once per response: an ES256 signature was the largest single cost of a
request, and a batch already shares one transaction. Each response's claims are a leaf of an
RFC 6962 Merkle tree over its batch; the batch statement signs the tree's root, and each response
carries the path from its leaf to that root. The header is one ASCII value of four parts joined
by `~` (a character that neither a compact JWS nor base64url uses):

    <statement JWS> ~ <claims, base64url without padding> ~ <leaf index> ~ <audit path>

- claims: the canonical JSON (sorted keys, no whitespace) of one response,

      {"bodySha256": <hex SHA-256 of the exact response body bytes>,
       "documentHash": <the request's GraphQL document hash, or null>,
       "recordId": <the audit record's id>,
       "time": <the record's time, UTC ISO 8601>}

- statement JWS: a compact JWS, RFC 7515 section 7.1, `typ: audit-evidence+jws`, signed with the
  hub's key, whose payload is the canonical JSON

      {"merkleRoot": <hex root>, "treeSize": <leaves>, "time": <when the batch was signed>}

- the tree (`_merkle`, RFC 6962 section 2.1): leaf hash SHA-256(0x00 || claims bytes), node
  hash SHA-256(0x01 || left || right), split at the largest power of two below the size. Its
  leaves are the batch's responses that asked for evidence, in commit order (refusals and other
  records sent without a body are not leaves, and a batch of them alone signs nothing).
- leaf index: decimal; audit path: the sibling hashes from the leaf up, lowercase hex,
  comma-separated (empty for a batch of one).

The body itself is the detached part: only its hash travels, so the header stays small and the
log never holds the body, while the agency that keeps body and header can show what it received.
The claims travel in the clear (hashes, an id and a time; nothing secret) because they cannot be
rebuilt from the body. A path discloses only hashes of the batch's other leaves, each covering a
random record id, and `treeSize` how many responses shared the signature; the statement carries
no seq, which would tell every agency how busy the hub is.

`check_evidence` verifies the statement's signature and type, decodes the claims, folds the leaf
and its path into a root that must equal the signed root for the signed size, and compares the
body with `bodySha256`. Format 1 (one JWS over the claims per response) is refused with a reason
saying so: no evidence of that format was ever kept outside the hub's own tests.

Proof format (`AuditLog.prove`, checked offline by `check_proof`): the record as exported, the
content digests of the records after it up to the first checkpoint that covers it, and that
checkpoint. Folding the digests onto the record's hash must give the checkpoint's signed head.
Only digests of other records are disclosed, never their content.

Never: raise on a malformed header or proof in the checks; they answer with a reason.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from observability.audit._merkle import root_from_path
from observability.audit._records import (
    AuditRecord,
    canonical,
    chain_hash,
    format_time,
    recomputed_hash,
    record_from_json,
    record_to_json,
)
from observability.audit._signing import EVIDENCE_TYP, check_signature
from observability.audit._verify import check_checkpoint

__all__ = [
    "PROOF_FORMAT",
    "EvidenceCheck",
    "EvidenceClaims",
    "ProofCheck",
    "batch_statement",
    "build_proof",
    "check_evidence",
    "check_proof",
    "evidence_claims",
    "evidence_value",
    "require_logged_body",
]

PROOF_FORMAT = "permit-hub-audit-proof/1"
_SEPARATOR = "~"
_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")
_INDEX = re.compile(r"0|[1-9][0-9]{0,9}")
_HASH = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class EvidenceClaims:
    body_sha256: str
    document_hash: str | None
    record_id: str
    time: str


@dataclass(frozen=True)
class EvidenceCheck:
    """The result of `check_evidence`: the signed claims, and why it fails if it does."""

    ok: bool
    reason: str | None
    claims: EvidenceClaims | None
    kid: str | None


@dataclass(frozen=True)
class ProofCheck:
    """The result of `check_proof`: the proved record, and why it fails if it does."""

    ok: bool
    reason: str | None
    record: AuditRecord | None


def body_sha256(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def require_logged_body(logged_sha256: str | None, body: bytes) -> None:
    """Evidence is made only for the body its record logs: refuse any other (or none)."""
    if logged_sha256 != body_sha256(body):
        raise ValueError("the body's SHA-256 differs from the one the audit record holds")


def evidence_claims(record: AuditRecord) -> bytes:
    """One response's leaf: the canonical claims of the record that logged its body."""
    if record.response_sha256 is None:
        raise ValueError(f"audit record {record.id} logs no response body")
    return canonical({
        "bodySha256": record.response_sha256,
        "documentHash": record.document_hash,
        "recordId": record.id,
        "time": format_time(record.time),
    })


def batch_statement(root: bytes, size: int, signed_at: datetime) -> bytes:
    """The payload signed once per batch."""
    return canonical({"merkleRoot": root.hex(), "treeSize": size, "time": format_time(signed_at)})


def evidence_value(statement: str, claims: bytes, index: int, path: Sequence[bytes]) -> str:
    """The header value of the response whose `claims` are leaf `index` of the signed batch."""
    encoded = base64.urlsafe_b64encode(claims).rstrip(b"=").decode("ascii")
    hops = ",".join(sibling.hex() for sibling in path)
    return _SEPARATOR.join((statement, encoded, str(index), hops))


@dataclass(frozen=True)
class _Parts:
    statement: str
    claims: bytes
    index: int
    path: tuple[bytes, ...]


@dataclass(frozen=True)
class _Statement:
    root: bytes
    size: int


def check_evidence(
    evidence: str,
    body: bytes,
    jwks: dict[str, Any],
    proof: Mapping[str, Any] | None = None,
) -> EvidenceCheck:
    """Offline: does `evidence` vouch for exactly `body` (and, given a proof, for its record)?"""
    parts = _parts(evidence.strip())
    if isinstance(parts, str):
        return EvidenceCheck(False, parts, None, None)
    signed = check_signature(parts.statement, EVIDENCE_TYP, jwks)
    if signed.payload is None:
        return EvidenceCheck(False, signed.reason, None, signed.kid)
    statement = _statement(signed.payload)
    claims = _claims(parts.claims)
    if statement is None or claims is None:
        what = "batch statement" if statement is None else "claims"
        return EvidenceCheck(False, f"evidence {what} malformed", None, signed.kid)
    root = root_from_path(parts.claims, parts.index, statement.size, parts.path)
    if root != statement.root:
        return EvidenceCheck(False, _not_included(root, parts.index, statement.size), None,
                             signed.kid)
    if claims.body_sha256 != body_sha256(body):
        return EvidenceCheck(False, "the body differs from the one the hub signed", claims,
                             signed.kid)
    reason = _proof_mismatch(claims, proof, jwks) if proof is not None else None
    return EvidenceCheck(reason is None, reason, claims, signed.kid)


def _parts(value: str) -> _Parts | str:
    """The header's four parts, or why it is not evidence of this format."""
    if not value.isascii():
        return "malformed evidence: not ASCII"
    fields = value.split(_SEPARATOR)
    if len(fields) == 1 and value.count(".") == 2:
        return ("a single JWS is format-1 evidence, no longer accepted: format 2 is"
                " statement~claims~index~path")
    if len(fields) != 4:
        return "malformed evidence: expected statement~claims~index~path"
    statement, encoded, index, hops = fields
    claims = _unbase64url(encoded)
    if claims is None:
        return "malformed evidence: the claims are not base64url"
    if _INDEX.fullmatch(index) is None:
        return "malformed evidence: the leaf index is not a decimal number"
    path = hops.split(",") if hops else []
    if not all(_HASH.fullmatch(hop) for hop in path):
        return "malformed evidence: the audit path is not comma-separated hex SHA-256"
    return _Parts(statement, claims, int(index), tuple(bytes.fromhex(hop) for hop in path))


def _unbase64url(text: str) -> bytes | None:
    if _BASE64URL.fullmatch(text) is None or len(text) % 4 == 1:
        return None
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except binascii.Error:
        return None


def _statement(payload: bytes) -> _Statement | None:
    try:
        value = orjson.loads(payload)
        root, size = value["merkleRoot"], value["treeSize"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return None
    if not isinstance(root, str) or _HASH.fullmatch(root) is None:
        return None
    if type(size) is not int or size < 1:
        return None
    return _Statement(bytes.fromhex(root), size)


def _claims(payload: bytes) -> EvidenceClaims | None:
    try:
        value = orjson.loads(payload)
        return EvidenceClaims(
            body_sha256=str(value["bodySha256"]),
            document_hash=value["documentHash"],
            record_id=str(value["recordId"]),
            time=str(value["time"]),
        )
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return None


def _not_included(root: bytes | None, index: int, size: int) -> str:
    if root is None:
        return f"the audit path does not fit leaf {index} of a batch of {size}"
    return "the claims are not in the signed batch: their path leads to another Merkle root"


def _proof_mismatch(
    claims: EvidenceClaims, proof: Mapping[str, Any], jwks: dict[str, Any]
) -> str | None:
    checked = check_proof(proof, jwks)
    if checked.record is None or not checked.ok:
        return f"proof: {checked.reason}"
    record = checked.record
    if (record.id, record.response_sha256, record.document_hash) != (
        claims.record_id, claims.body_sha256, claims.document_hash
    ):
        return "the proved audit record is not the one the evidence names"
    return None


def build_proof(
    record: AuditRecord, following: Sequence[str], checkpoint: Mapping[str, Any]
) -> dict[str, Any]:
    return {
        "format": PROOF_FORMAT,
        "record": record_to_json(record),
        "following_digests": list(following),
        "checkpoint": dict(checkpoint),
    }


def check_proof(proof: Mapping[str, Any], jwks: dict[str, Any]) -> ProofCheck:
    """Offline: is the record in the chain that a signed checkpoint vouches for?"""
    try:
        record = record_from_json(proof["record"])
        following = [str(digest) for digest in proof["following_digests"]]
        checkpoint = proof["checkpoint"]
        seq, head, token = int(checkpoint["seq"]), str(checkpoint["hash"]), str(checkpoint["jws"])
    except (KeyError, TypeError, ValueError) as exc:
        return ProofCheck(False, f"malformed proof: {exc}", None)
    if proof.get("format") != PROOF_FORMAT:
        return ProofCheck(False, f"unknown proof format {proof.get('format')!r}", record)
    if recomputed_hash(record) != record.hash:
        return ProofCheck(False, "the record's contents do not match its hash", record)
    if seq != record.seq + len(following):
        return ProofCheck(False, "the digests do not reach the checkpoint's seq", record)
    try:
        folded = _fold(record.hash, following)
    except ValueError:
        return ProofCheck(False, "a digest is not hexadecimal SHA-256", record)
    if folded != head:
        return ProofCheck(False, "the chain from the record does not reach the checkpoint",
                          record)
    reason = check_checkpoint(token, seq, head, jwks)
    return ProofCheck(reason is None, reason, record)


def _fold(start: str, digests: Sequence[str]) -> str:
    current = start
    for digest in digests:
        if len(digest) != 64:
            raise ValueError(digest)
        current = chain_hash(current, digest)
    return current
