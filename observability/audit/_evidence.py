"""Evidence for the receiving agency, and proofs that a record is in the signed chain.

Evidence format (the value of the response header): a compact JWS, RFC 7515 section 7.1,
`typ: audit-evidence+jws`, signed with the hub's key, whose payload is the canonical JSON

    {"bodySha256": <hex SHA-256 of the exact response body bytes>,
     "documentHash": <the request's GraphQL document hash, or null>,
     "recordId": <the audit record's id>,
     "time": <the record's time, UTC ISO 8601>}

The body itself is the detached part: only its hash travels in the JWS, so the header stays small
and the log never holds the body, while the agency that keeps body and header can show what it
received. We do not use an RFC 7515 appendix F detached payload: the claims other than the body
hash cannot be rebuilt from the body, so they would have to travel beside the JWS anyway; here
they are signed and visible (hashes, an id and a time; nothing secret).

Proof format (`AuditLog.prove`, checked offline by `check_proof`): the record as exported, the
content digests of the records after it up to the first checkpoint that covers it, and that
checkpoint. Folding the digests onto the record's hash must give the checkpoint's signed head.
Only digests of other records are disclosed, never their content.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

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
    "build_proof",
    "check_evidence",
    "check_proof",
    "evidence_payload",
]

PROOF_FORMAT = "permit-hub-audit-proof/1"


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


def evidence_payload(record: AuditRecord, body: bytes) -> bytes:
    """The canonical claims signed for one response; refuses a body the record did not log."""
    digest = body_sha256(body)
    if record.response_sha256 is not None and record.response_sha256 != digest:
        raise ValueError("the body's SHA-256 differs from the one the audit record holds")
    return canonical({
        "bodySha256": digest,
        "documentHash": record.document_hash,
        "recordId": record.id,
        "time": format_time(record.time),
    })


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


def check_evidence(
    evidence: str,
    body: bytes,
    jwks: dict[str, Any],
    proof: Mapping[str, Any] | None = None,
) -> EvidenceCheck:
    """Offline: does `evidence` vouch for exactly `body` (and, given a proof, for its record)?"""
    signed = check_signature(evidence.strip(), EVIDENCE_TYP, jwks)
    if signed.payload is None:
        return EvidenceCheck(False, signed.reason, None, signed.kid)
    claims = _claims(signed.payload)
    if claims is None:
        return EvidenceCheck(False, "evidence payload is malformed", None, signed.kid)
    if claims.body_sha256 != body_sha256(body):
        return EvidenceCheck(False, "the body differs from the one the hub signed", claims,
                             signed.kid)
    reason = _proof_mismatch(claims, proof, jwks) if proof is not None else None
    return EvidenceCheck(reason is None, reason, claims, signed.kid)


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
