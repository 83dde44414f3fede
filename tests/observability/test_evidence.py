"""Evidence for the receiving agency, and proofs for auditors, checked offline years later."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from observability.audit import (
    AuditLog,
    AuditQueryError,
    AuditRecord,
    LocalSigner,
    check_evidence,
    check_proof,
)
from tests.observability.conftest import event

BODY = b'{"data":{"permit":{"number":"420100202500000014","status":"VALID"}}}'


async def _answered(log: AuditLog, body: bytes = BODY) -> AuditRecord:
    return await log.append(event(1, response_sha256=hashlib.sha256(body).hexdigest()))


async def test_evidence_verifies_offline_with_the_hub_jwks(
    log: AuditLog, signer: LocalSigner
) -> None:
    record = await _answered(log)

    evidence = await log.make_evidence(record, BODY)
    checked = check_evidence(evidence, BODY, signer.jwks())

    assert checked.ok, checked.reason
    assert checked.claims is not None
    assert checked.claims.record_id == record.id
    assert checked.claims.document_hash == record.document_hash


async def test_changing_one_byte_of_the_body_fails_the_evidence(
    log: AuditLog, signer: LocalSigner
) -> None:
    record = await _answered(log)
    evidence = await log.make_evidence(record, BODY)
    saved = bytearray(BODY)
    saved[30] ^= 0x01

    checked = check_evidence(evidence, bytes(saved), signer.jwks())

    assert not checked.ok
    assert "body" in (checked.reason or "")


async def test_evidence_from_another_key_fails(log: AuditLog) -> None:
    evidence = await log.make_evidence(await _answered(log), BODY)

    assert not check_evidence(evidence, BODY, LocalSigner().jwks()).ok


async def test_a_checkpoint_does_not_pass_for_evidence(log: AuditLog, signer: LocalSigner) -> None:
    record = await _answered(log)
    proof = await log.prove(record.id)

    assert not check_evidence(proof["checkpoint"]["jws"], BODY, signer.jwks()).ok


async def test_evidence_is_refused_for_a_body_the_record_did_not_log(log: AuditLog) -> None:
    record = await _answered(log)

    with pytest.raises(ValueError, match="SHA-256"):
        await log.make_evidence(record, BODY + b" ")


async def test_proof_shows_the_record_is_in_the_signed_chain(
    log: AuditLog, signer: LocalSigner
) -> None:
    record = await _answered(log)
    for i in range(2, 15):  # a checkpoint (every 10) lands after the record
        await log.append(event(i))
    await log.close()

    proof = await log.prove(record.id)
    checked = check_proof(proof, signer.jwks())

    assert checked.ok, checked.reason
    assert proof["checkpoint"]["seq"] == 10
    assert len(proof["following_digests"]) == 9
    assert "client_id" not in str(proof["following_digests"])


async def test_proving_the_newest_record_signs_a_checkpoint_for_it(
    log: AuditLog, signer: LocalSigner
) -> None:
    record = await _answered(log)

    proof = await log.prove(record.id)

    assert proof["checkpoint"]["seq"] == record.seq
    assert check_proof(proof, signer.jwks()).ok


async def test_evidence_with_its_proof_checks_body_record_and_chain(
    log: AuditLog, signer: LocalSigner
) -> None:
    record = await _answered(log)
    evidence = await log.make_evidence(record, BODY)
    proof = await log.prove(record.id)

    assert check_evidence(evidence, BODY, signer.jwks(), proof).ok
    other = await log.prove((await _answered(log, b"{}")).id)
    assert not check_evidence(evidence, BODY, signer.jwks(), other).ok


def _edited(proof: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**proof, "record": {**proof["record"], **changes}}


async def test_an_edited_proof_fails(log: AuditLog, signer: LocalSigner) -> None:
    record = await _answered(log)
    await log.append(event(2))
    proof = await log.prove(record.id)

    assert not check_proof(_edited(proof, purpose="curiosity"), signer.jwks()).ok
    assert not check_proof({**proof, "following_digests": []}, signer.jwks()).ok
    assert not check_proof({"format": "nonsense"}, signer.jwks()).ok


async def test_proving_an_unknown_record_is_a_query_error(log: AuditLog) -> None:
    with pytest.raises(AuditQueryError):
        await log.prove("0" * 32)
