"""Faults under load, in production shape: what every agency and the auditor can still rely on.

Two `hub serve` instances share one PostgreSQL database and one Redis (`fault_stack`); a few
clients read permits and register enrollments on both while one fault is injected:

- Redis flushed (FLUSHALL), and Redis killed and started again empty (no persistence);
- PostgreSQL restarted: every connection to the hub database reset and new ones refused for
  5.5 s (a TCP proxy in front of the shared server, which itself is never touched);
- the Work Management System frozen with SIGSTOP for 4 s, then SIGCONT;
- one hub instance SIGKILLed mid-load, then started again.

Each fault runs once per module (`fault_run`); the tests below each check one promise on it:
no response is a server error (503 is allowed while the fault lasts); every 200 carries an
audit record id and evidence that are in the log and match the body; nothing is written
twice; `hub audit verify` passes; and once the fault is over, everything is answered in full.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import signal
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine

from connectors.agency_tables import enrollment_requests, enrollments
from observability.audit import check_evidence
from tests.faults.conftest import (
    READER,
    VALIDITY,
    FaultStack,
    Load,
    Outcome,
    needs_production_shape,
)

pytestmark = needs_production_shape

BEFORE_SECONDS = 2.0  # load before the fault
RECOVERY_SECONDS = 3.0  # after the fault ends, what may still fail
AFTER_SECONDS = 3.0  # then load that must all be answered in full


async def _flush_redis(stack: FaultStack) -> None:
    await stack.redis.flushall()


async def _restart_redis(stack: FaultStack) -> None:
    await stack.redis.crash()
    await asyncio.sleep(1.5)
    await stack.redis.start()


async def _restart_postgres(stack: FaultStack) -> None:
    # Longer than an instance keeps a client's registration (5 s): every lookup of the
    # clients under load is made while the database is away at least once.
    await stack.proxy.cut()
    await asyncio.sleep(5.5)
    await stack.proxy.start()


async def _kill_a_hub(stack: FaultStack) -> None:
    await stack.hubs[1].child.kill()
    await asyncio.sleep(1.0)
    await stack.hubs[1].start()  # returns once it answers /healthz


async def _freeze_wms(stack: FaultStack) -> None:
    stack.wms.signal(signal.SIGSTOP)
    try:
        await asyncio.sleep(4.0)  # two deadlines (2 s) in a row for the callers it holds
    finally:
        stack.wms.signal(signal.SIGCONT)


FAULTS: dict[str, Callable[[FaultStack], Awaitable[None]]] = {
    "redis-flushed": _flush_redis,
    "redis-restarted": _restart_redis,
    "postgres-restarted": _restart_postgres,
    "hub-killed": _kill_a_hub,
    "wms-stopped": _freeze_wms,  # last: its breaker may stay open a while
}


@dataclass
class FaultRun:
    fault: str
    load: Load
    began: float
    ended: float

    @property
    def outcomes(self) -> list[Outcome]:
        return self.load.outcomes

    def phase(self, outcome: Outcome) -> str:
        if outcome.ended < self.began:
            return "before"
        if outcome.started >= self.ended + RECOVERY_SECONDS:
            return "after"
        return "during"

    def summary(self) -> str:
        counts: Counter[tuple[str, str, str]] = Counter()
        for o in self.outcomes:
            what = str(o.status or o.transport_error)
            if o.status == 200 and o.error_codes:
                what += " " + "+".join(sorted(set(o.error_codes)))
            elif o.status is not None and o.status != 200:
                what += " " + "+".join(sorted(set(o.error_codes)))
                what += " retry-after" if "retry-after" in o.headers else ""
            counts[(self.phase(o), o.op, what)] += 1
        lines = [f"{self.fault}: fault {self.ended - self.began:.1f} s"]
        lines += [f"  {p:6} {op:5} {what}: {n}" for (p, op, what), n in sorted(counts.items())]
        return "\n".join(lines)


async def _settled(stack: FaultStack) -> None:
    """Both instances answer a read in full (the previous fault is over), within 30 s."""
    async with httpx.AsyncClient(timeout=10) as client:
        token = (await client.post(
            stack.urls[0] + "/oauth/token", data={"grant_type": "client_credentials"},
            auth=(READER[0], stack.secrets[READER[0]]),
        )).json()["access_token"]
        headers = {"authorization": f"Bearer {token}", "x-purpose-of-use": READER[1]}
        numbers = iter(sorted(stack.dataset.permits, reverse=True))
        deadline = time.monotonic() + 30
        for url in stack.urls:
            while True:
                response = await client.post(
                    url + "/graphql", headers=headers,
                    json={"query": VALIDITY, "variables": {"n": next(numbers)}},
                )
                if response.status_code == 200 and "errors" not in response.json():
                    break
                assert time.monotonic() < deadline, f"{url} not settled: {response.text}"
                await asyncio.sleep(0.5)


_RUNS: dict[str, FaultRun] = {}


@pytest.fixture
async def fault_run(request: pytest.FixtureRequest, fault_stack: FaultStack) -> FaultRun:
    """The fault of the test's parameter, run once under load; later tests reuse its outcomes."""
    fault: str = request.param
    if fault not in _RUNS:
        await _settled(fault_stack)
        async with Load(fault_stack) as load:
            await asyncio.sleep(BEFORE_SECONDS)
            began = time.monotonic()
            await FAULTS[fault](fault_stack)
            ended = time.monotonic()
            await asyncio.sleep(RECOVERY_SECONDS + AFTER_SECONDS)
        _RUNS[fault] = FaultRun(fault, load, began, ended)
        print("\n" + _RUNS[fault].summary())
    return _RUNS[fault]


def _faults() -> list[str]:
    return list(FAULTS)


@pytest.mark.parametrize("fault_run", _faults(), indirect=True)
async def test_the_load_was_served_before_the_fault(fault_run: FaultRun) -> None:
    before = [o for o in fault_run.outcomes if fault_run.phase(o) == "before"]
    assert {o.op for o in before} == {"read", "write"}
    assert [o for o in before if not o.complete] == []


@pytest.mark.parametrize("fault_run", _faults(), indirect=True)
async def test_no_response_is_a_server_error(fault_run: FaultRun) -> None:
    """A fault may make the hub refuse for a while (503), never fail with a 500."""
    errors = Counter(
        (o.status, tuple(o.error_codes)) for o in fault_run.outcomes
        if o.status is not None and o.status >= 500 and o.status != 503
    )
    assert errors == Counter(), fault_run.summary()


@pytest.mark.parametrize("fault_run", _faults(), indirect=True)
async def test_an_outage_says_when_to_retry_and_never_blames_the_token(
    fault_run: FaultRun,
) -> None:
    """A 503 names a Retry-After; a dependency outage is never a 401 (which would send
    clients to fetch new tokens, each a password hash, instead of waiting)."""
    unavailable = [o for o in fault_run.outcomes if o.status == 503]
    assert [o for o in unavailable if "retry-after" not in o.headers] == [], fault_run.summary()
    assert [o for o in fault_run.outcomes if o.status == 401] == [], fault_run.summary()


@pytest.mark.parametrize("fault_run", _faults(), indirect=True)
async def test_every_answer_is_in_the_audit_log_with_its_evidence(
    fault_run: FaultRun, fault_stack: FaultStack
) -> None:
    answered = [o for o in fault_run.outcomes if o.status == 200]
    assert answered
    signed = {"x-hub-audit-record", "x-hub-evidence"}
    unsigned = [o for o in answered if not signed <= o.headers.keys()]
    assert unsigned == []
    logged = await _exported(fault_stack)
    for o in answered:
        record_id = o.headers["x-hub-audit-record"]
        assert record_id in logged, f"a 200 whose record {record_id} is not in the log"
        assert logged[record_id]["response_sha256"] == hashlib.sha256(o.body).hexdigest()
        checked = check_evidence(o.headers["x-hub-evidence"], o.body, fault_stack.jwks)
        assert checked.ok, checked.reason
        assert checked.claims is not None and checked.claims.record_id == record_id
    ids = [o.headers["x-hub-audit-record"] for o in answered]
    assert len(ids) == len(set(ids)), "two responses name one audit record"


async def _exported(stack: FaultStack) -> dict[str, dict[str, object]]:
    """`hub audit export --format jsonl`, by record id; its ids and seqs must be unique."""
    path = stack.tmp / f"export-{time.monotonic_ns()}.jsonl"
    code, out = await stack.cli("audit", "export", "--format", "jsonl", "--output", str(path))
    assert code == 0, out
    exported = [json.loads(line) for line in path.read_text().splitlines()]
    seqs = [r["seq"] for r in exported]
    assert seqs == list(range(1, len(exported) + 1)), "the chain has a gap or a repeated seq"
    by_id = {str(r["id"]): r for r in exported}
    assert len(by_id) == len(exported), "one record id twice in the log"
    return by_id


@pytest.mark.parametrize("fault_run", _faults(), indirect=True)
async def test_nothing_is_written_twice(fault_run: FaultRun, fault_stack: FaultStack) -> None:
    """Each registration, however often it was sent, is one enrollment with one SSN."""
    load = fault_run.load
    given: dict[str, set[str]] = {}  # key -> the SSNs the hub answered with
    for o in fault_run.outcomes:
        if o.op == "write" and o.complete and o.key is not None:
            ssn = o.json["data"]["registerEnrollment"]["enrollment"]["ssn"]
            given.setdefault(o.key, set()).add(ssn)
        if o.op == "write":
            assert "CONFLICT" not in o.error_codes, f"a retry was refused: {o.body!r}"
    assert set(given) == set(load.enrolled), "a registration was never answered in full"
    assert all(len(ssns) == 1 for ssns in given.values()), given
    permits = list(load.enrolled.values())
    stored_ssns: dict[str, str] = {}
    per_permit: Counter[str] = Counter()
    for url in fault_stack.agency_urls.values():
        engine = create_async_engine(url)
        try:
            async with engine.connect() as conn:
                rows = await conn.execute(
                    select(enrollment_requests.c.idempotency_key, enrollment_requests.c.ssn)
                    .where(enrollment_requests.c.idempotency_key.in_(list(load.enrolled)))
                )
                stored_ssns.update({k: s for k, s in rows})
                counts = await conn.execute(
                    select(enrollments.c.permit_number, func.count())
                    .where(enrollments.c.permit_number.in_(permits))
                    .group_by(enrollments.c.permit_number)
                )
                per_permit.update({p: int(n) for p, n in counts})
        finally:
            await engine.dispose()
    assert stored_ssns == {k: next(iter(s)) for k, s in given.items()}
    assert per_permit == Counter(dict.fromkeys(permits, 1)), "a permit enrolled twice"


@pytest.mark.parametrize("fault_run", _faults(), indirect=True)
async def test_the_audit_chain_verifies(fault_run: FaultRun, fault_stack: FaultStack) -> None:
    code, out = await fault_stack.cli("audit", "verify")
    assert code == 0 and out.startswith("ok:"), out


@pytest.mark.parametrize("fault_run", _faults(), indirect=True)
async def test_the_hub_recovers_once_the_fault_is_over(fault_run: FaultRun) -> None:
    after = [o for o in fault_run.outcomes if fault_run.phase(o) == "after"]
    # Both instances, both kinds of request: the check cannot pass for want of load.
    assert {(o.op, o.instance) for o in after} == {(op, i) for op in ("read", "write")
                                                  for i in (0, 1)}
    failed = Counter(
        (o.op, o.status or o.transport_error, tuple(o.error_codes))
        for o in after if not o.complete
    )
    assert failed == Counter(), fault_run.summary()
