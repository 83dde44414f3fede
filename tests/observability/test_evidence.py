"""Evidence for the receiving agency, and proofs for auditors, checked offline years later.

Evidence is signed once per commit batch; `CountingSigner` and `FailingSigner` stand in for the
hub's key store (a real ES256 key each), the audit log under test is the real one."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from observability.audit import (
    AuditLog,
    AuditQueryError,
    AuditUnavailable,
    Evidenced,
    LocalSigner,
    check_evidence,
    check_proof,
)
from observability.audit._signing import EVIDENCE_TYP
from tests.observability.conftest import event, record_count

BODY = b'{"data":{"permit":{"number":"420100202500000014","status":"VALID"}}}'
BATCH_SIZES = [1, 2, 3, 5, 8, 13]


class CountingSigner(LocalSigner):
    """The hub's key store, counting the evidence statements it signs."""

    def __init__(self) -> None:
        super().__init__()
        self.evidence_signatures = 0

    async def sign_jws(self, payload: bytes, typ: str = "JOSE") -> str:
        if typ == EVIDENCE_TYP:
            self.evidence_signatures += 1
        return await super().sign_jws(payload, typ)


class FailingSigner(LocalSigner):
    """A key store that cannot sign evidence while `failing` (its database is away, say)."""

    failing = True

    async def sign_jws(self, payload: bytes, typ: str = "JOSE") -> str:
        if self.failing and typ == EVIDENCE_TYP:
            raise OSError("key store unreachable")
        return await super().sign_jws(payload, typ)


def _body(i: int) -> bytes:
    return b'{"data":{"permit":{"number":"%d","status":"VALID"}}}' % i


async def _answered(log: AuditLog, body: bytes = BODY, i: int = 1) -> Evidenced:
    logged = event(i, response_sha256=hashlib.sha256(body).hexdigest())
    return await log.append_with_evidence(logged, body)


async def _one_batch(log: AuditLog, bodies: list[bytes]) -> list[Evidenced]:
    """Appended side by side: they all wait on the writer, which takes them as one batch."""
    stored = await asyncio.gather(*(_answered(log, body, i) for i, body in enumerate(bodies)))
    assert log.stats.commits == 1, "the appends did not share one commit"
    return stored


@pytest.fixture
async def counted(engine: AsyncEngine) -> AsyncIterator[tuple[AuditLog, CountingSigner]]:
    signer = CountingSigner()
    log = AuditLog(engine, signer, checkpoint_every=1000, checkpoint_seconds=3600)
    await log.start()
    yield log, signer
    await log.close()


def _parts(evidence: str) -> list[str]:
    statement, claims, index, path = evidence.split("~")
    return [statement, claims, index, path]


def _claims_bytes(evidence: str) -> bytes:
    encoded = _parts(evidence)[1]
    return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))


def _claims_of(evidence: str) -> dict[str, Any]:
    value: dict[str, Any] = orjson.loads(_claims_bytes(evidence))
    return value


def _with_claims(evidence: str, **changes: Any) -> str:
    parts = _parts(evidence)
    claims = orjson.dumps({**_claims_of(evidence), **changes}, option=orjson.OPT_SORT_KEYS)
    parts[1] = base64.urlsafe_b64encode(claims).rstrip(b"=").decode()
    return "~".join(parts)


async def test_evidence_verifies_offline_with_the_hub_jwks(
    log: AuditLog, signer: LocalSigner
) -> None:
    stored = await _answered(log)

    checked = check_evidence(stored.evidence, BODY, signer.jwks())

    assert checked.ok, checked.reason
    assert checked.claims is not None
    assert checked.claims.record_id == stored.record.id
    assert checked.claims.document_hash == stored.record.document_hash
    assert checked.claims.body_sha256 == stored.record.response_sha256
    assert stored.evidence.isascii() and "\n" not in stored.evidence


async def test_changing_one_byte_of_the_body_fails_the_evidence(
    log: AuditLog, signer: LocalSigner
) -> None:
    stored = await _answered(log)
    saved = bytearray(BODY)
    saved[30] ^= 0x01

    checked = check_evidence(stored.evidence, bytes(saved), signer.jwks())

    assert not checked.ok
    assert "body" in (checked.reason or "")


async def test_evidence_from_another_key_fails(log: AuditLog) -> None:
    stored = await _answered(log)

    checked = check_evidence(stored.evidence, BODY, LocalSigner().jwks())

    assert not checked.ok
    assert "signature does not verify" in (checked.reason or "")


async def test_a_checkpoint_does_not_pass_for_a_batch_statement(
    log: AuditLog, signer: LocalSigner
) -> None:
    stored = await _answered(log)
    checkpoint = (await log.prove(stored.record.id))["checkpoint"]["jws"]
    parts = _parts(stored.evidence)

    checked = check_evidence("~".join([checkpoint, *parts[1:]]), BODY, signer.jwks())

    assert not checked.ok
    assert "audit-checkpoint+jws" in (checked.reason or "")


async def test_a_tampered_claim_fails_though_the_body_matches_it(
    log: AuditLog, signer: LocalSigner
) -> None:
    stored = await _answered(log)
    other = b'{"data":{"permit":{"status":"REVOKED"}}}'

    forged = _with_claims(stored.evidence, bodySha256=hashlib.sha256(other).hexdigest())
    renamed = _with_claims(stored.evidence, recordId="0" * 32)

    for evidence, body in ((forged, other), (renamed, BODY)):
        checked = check_evidence(evidence, body, signer.jwks())
        assert not checked.ok
        assert "not in the signed batch" in (checked.reason or "")
        assert checked.claims is None


async def test_a_tampered_path_or_index_fails(
    counted: tuple[AuditLog, CountingSigner],
) -> None:
    log, signer = counted
    bodies = [_body(i) for i in range(3)]
    stored = await _one_batch(log, bodies)
    statement, claims, index, path = _parts(stored[0].evidence)
    hops = path.split(",")
    flipped = ("0" if hops[0][0] != "0" else "1") + hops[0][1:]

    tampered = {
        "a changed hop": ",".join([flipped, *hops[1:]]),
        "a hop too many": ",".join([*hops, hops[0]]),
        "a hop too few": ",".join(hops[:-1]),
    }
    for what, changed in tampered.items():
        evidence = "~".join([statement, claims, index, changed])
        assert not check_evidence(evidence, bodies[0], signer.jwks()).ok, what
    for other in ("1", "2", "3"):
        evidence = "~".join([statement, claims, other, path])
        assert not check_evidence(evidence, bodies[0], signer.jwks()).ok, other


@pytest.mark.parametrize(
    "evidence",
    [
        "",
        "~~~",
        "a~b~c~d",
        "x.y.z~~0~",
        "one~two~three~four~five",
        "é~a~0~",
        "STATEMENT~e30~-1~",
        "STATEMENT~e30~01~",
        "STATEMENT~e30=~0~",
        "STATEMENT~e30~0~zz",
        "STATEMENT~e30~0~" + "a" * 64 + ",",
        "STATEMENT~e30~99999999999999999999~",
    ],
)
async def test_malformed_evidence_is_refused_with_a_reason_never_an_exception(
    log: AuditLog, signer: LocalSigner, evidence: str
) -> None:
    statement = _parts((await _answered(log)).evidence)[0]

    checked = check_evidence(evidence.replace("STATEMENT", statement), BODY, signer.jwks())

    assert not checked.ok
    assert checked.reason


async def test_a_statement_that_is_not_a_batch_statement_is_refused(
    log: AuditLog, signer: LocalSigner
) -> None:
    parts = _parts((await _answered(log)).evidence)
    for payload in (b"[]", b'{"merkleRoot":"ab","treeSize":1}', b'{"treeSize":true}'):
        statement = await signer.sign_jws(payload, EVIDENCE_TYP)

        checked = check_evidence("~".join([statement, *parts[1:]]), BODY, signer.jwks())

        assert not checked.ok
        assert "batch statement malformed" in (checked.reason or "")


async def test_format_1_evidence_is_refused_with_a_reason(
    log: AuditLog, signer: LocalSigner
) -> None:
    claims = _claims_bytes((await _answered(log)).evidence)
    single_jws = await signer.sign_jws(claims, EVIDENCE_TYP)

    checked = check_evidence(single_jws, BODY, signer.jwks())

    assert not checked.ok
    assert "format-1" in (checked.reason or "")


async def test_evidence_is_refused_for_a_body_the_record_did_not_log(
    log: AuditLog, engine: AsyncEngine
) -> None:
    logged = event(1, response_sha256=hashlib.sha256(BODY).hexdigest())

    with pytest.raises(ValueError, match="SHA-256"):
        await log.append_with_evidence(logged, BODY + b" ")
    with pytest.raises(ValueError, match="SHA-256"):
        await log.append_with_evidence(event(2, response_sha256=None), BODY)
    assert await record_count(engine) == 0


async def test_concurrent_responses_in_one_batch_share_one_signature(
    counted: tuple[AuditLog, CountingSigner],
) -> None:
    log, signer = counted
    bodies = [_body(i) for i in range(5)]

    stored = await _one_batch(log, bodies)

    assert signer.evidence_signatures == 1
    assert len({_parts(s.evidence)[0] for s in stored}) == 1
    for i, (mine, body) in enumerate(zip(stored, bodies, strict=True)):
        checked = check_evidence(mine.evidence, body, signer.jwks())
        assert checked.ok, checked.reason
        assert checked.claims is not None and checked.claims.record_id == mine.record.id
        another = bodies[(i + 1) % len(bodies)]
        assert not check_evidence(mine.evidence, another, signer.jwks()).ok


@pytest.mark.parametrize("size", BATCH_SIZES)
async def test_every_index_of_a_batch_verifies(
    counted: tuple[AuditLog, CountingSigner], size: int
) -> None:
    log, signer = counted
    bodies = [_body(i) for i in range(size)]

    stored = await _one_batch(log, bodies)

    assert signer.evidence_signatures == 1
    assert sorted(int(_parts(s.evidence)[2]) for s in stored) == list(range(size))
    for mine, body in zip(stored, bodies, strict=True):
        checked = check_evidence(mine.evidence, body, signer.jwks())
        assert checked.ok, (size, _parts(mine.evidence)[2], checked.reason)
    if size == 1:
        assert _parts(stored[0].evidence)[3] == ""


async def test_records_sent_without_a_body_are_no_leaves_and_alone_sign_nothing(
    counted: tuple[AuditLog, CountingSigner],
) -> None:
    log, signer = counted
    refusals = await asyncio.gather(*(log.append(event(100 + i)) for i in range(3)))
    assert signer.evidence_signatures == 0

    mixed = await asyncio.gather(
        log.append(event(200)), _answered(log, BODY, 201), log.append(event(202))
    )

    assert (signer.evidence_signatures, log.stats.commits) == (1, 2)
    assert [r.seq for r in refusals] == [1, 2, 3]
    answered = mixed[1]
    assert isinstance(answered, Evidenced)
    assert check_evidence(answered.evidence, BODY, signer.jwks()).ok
    assert _parts(answered.evidence)[2:] == ["0", ""]  # the only leaf of its batch


async def test_when_signing_fails_the_records_stay_and_only_evidence_waiters_fail(
    engine: AsyncEngine,
) -> None:
    signer = FailingSigner()
    log = AuditLog(engine, signer, checkpoint_every=1000, checkpoint_seconds=3600)
    await log.start()
    try:
        outcomes = await asyncio.gather(
            _answered(log, _body(0), 0), log.append(event(1)), _answered(log, _body(2), 2),
            return_exceptions=True,
        )
        assert log.stats.commits == 1
        signer.failing = False
        after = await _answered(log, _body(3), 3)  # the writer goes on
    finally:
        await log.close()

    assert isinstance(outcomes[0], AuditUnavailable)
    assert isinstance(outcomes[2], AuditUnavailable)
    assert not isinstance(outcomes[1], BaseException)
    assert await record_count(engine) == 4
    assert check_evidence(after.evidence, _body(3), signer.jwks()).ok
    assert (await log.verify()).ok


async def test_without_group_commit_evidence_is_a_batch_of_one(engine: AsyncEngine) -> None:
    signer = FailingSigner()
    signer.failing = False
    log = AuditLog(engine, signer, group_commit=False)
    await log.start()
    stored = await asyncio.gather(*(_answered(log, _body(i), i) for i in range(3)))
    signer.failing = True
    with pytest.raises(AuditUnavailable):
        await _answered(log, _body(3), 3)
    await log.close()

    for mine, body in zip(stored, [_body(i) for i in range(3)], strict=True):
        assert _parts(mine.evidence)[2:] == ["0", ""]
        assert check_evidence(mine.evidence, body, signer.jwks()).ok
    assert await record_count(engine) == 4


async def test_proof_shows_the_record_is_in_the_signed_chain(
    log: AuditLog, signer: LocalSigner
) -> None:
    record = (await _answered(log)).record
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
    record = (await _answered(log)).record

    proof = await log.prove(record.id)

    assert proof["checkpoint"]["seq"] == record.seq
    assert check_proof(proof, signer.jwks()).ok


async def test_evidence_with_its_proof_checks_body_record_and_chain(
    log: AuditLog, signer: LocalSigner
) -> None:
    stored = await _answered(log)
    proof = await log.prove(stored.record.id)

    assert check_evidence(stored.evidence, BODY, signer.jwks(), proof).ok
    other = await log.prove((await _answered(log, b"{}", 2)).record.id)
    mismatch = check_evidence(stored.evidence, BODY, signer.jwks(), other)
    assert not mismatch.ok
    assert "not the one the evidence names" in (mismatch.reason or "")


def _edited(proof: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**proof, "record": {**proof["record"], **changes}}


async def test_an_edited_proof_fails(log: AuditLog, signer: LocalSigner) -> None:
    record = (await _answered(log)).record
    await log.append(event(2))
    proof = await log.prove(record.id)

    assert not check_proof(_edited(proof, purpose="curiosity"), signer.jwks()).ok
    assert not check_proof({**proof, "following_digests": []}, signer.jwks()).ok
    assert not check_proof({"format": "nonsense"}, signer.jwks()).ok


async def test_proving_an_unknown_record_is_a_query_error(log: AuditLog) -> None:
    with pytest.raises(AuditQueryError):
        await log.prove("0" * 32)
