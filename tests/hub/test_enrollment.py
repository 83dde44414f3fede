"""Issue 5, item 1: an agency enrolls a foreigner, the hub assigns the SSN (`registerEnrollment`).

The session's agency databases are shared by every test, so each test here enrolls permits of
its own: a slice of the unenrolled VALID permits (no demo sample among them) no other test takes.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from connectors.agency_tables import enrollment_requests, enrollments, persons, ssn_sequences
from connectors.identifiers import mod11_2_check_char, validate_ssn
from connectors.records import Permit, PermitStatus
from observability.audit import AuditFilter
from tests.conftest import AGENCY_REGIONS, HubClient, Simulators, si_agency_of

REGISTER = """mutation($i: RegisterEnrollmentInput!) {
  registerEnrollment(input: $i) {
    created enrollment { ssn permitNumber region { code } status } } }"""
# The newest unenrolled permits below are all Yichang's (420500 sorts after 420100): the
# agency whose jurisdiction they are in registers them and reads them back.
AGENCY = "si-agency-yichang"

# Disjoint slices of the fresh permits, one per test.
_SLICES = {
    "happy": (0, 1), "again": (1, 2), "replay": (2, 3), "other_input": (3, 5), "other": (61, 71),
    "mismatch": (5, 6), "forbidden": (6, 7), "one_key": (7, 8), "by_get": (8, 9),
    "parallel": (10, 60),
    "names": (60, 61), "key_first": (71, 72),
    "key_elsewhere": (-5, -4),  # sorted by number: the far end is of the other region
}


def _fresh_permits(simulators: Simulators, test: str) -> list[Permit]:
    dataset = simulators.dataset
    enrolled = {e.permit_number for e in dataset.enrollments.values()}
    samples = set(dataset.samples.values())
    fresh = sorted(
        (
            p for p in dataset.permits.values()
            if p.is_valid_on(dataset.today) and p.work_location in AGENCY_REGIONS
            and p.number not in enrolled and p.number not in samples
        ),
        key=lambda p: p.number,
        reverse=True,  # far from the sorted()[:500] batch other tests read
    )
    start, stop = _SLICES[test]
    assert all(p.work_location == "420500" for p in fresh[:100])  # see AGENCY
    return fresh[start:stop]


def _input(permit: Permit, key: str | None = None, **changes: Any) -> dict[str, Any]:
    given = {
        "permitNumber": permit.number,
        "region": permit.work_location,
        "name": permit.holder.name,
        "nationality": permit.holder.nationality,
        "idempotencyKey": key or f"test-{uuid.uuid4().hex}",
    }
    return {**given, **changes}


async def _register(hub: HubClient, given: dict[str, Any]) -> dict[str, Any]:
    response = await hub.graphql(si_agency_of(given["permitNumber"]), REGISTER, {"i": given})
    body: dict[str, Any] = response.json()
    return body


async def _audited(hub: HubClient) -> list[tuple[str, tuple[str, ...], tuple[str, ...]]]:
    """(outcome, error codes, subjects) of each GraphQL request the hub recorded."""
    page = await hub.hub.audit.search(
        AuditFilter(), 500, None, subject_view=False, today=dt.date.today()
    )
    return [
        (r.outcome, tuple(r.error_codes), tuple(r.subjects))
        for r in page.records if r.kind == "graphql"
    ]


def _code(body: dict[str, Any]) -> str:
    code: str = body["errors"][0]["extensions"]["code"]
    return code


@pytest.fixture
async def agency_engines(simulators: Simulators) -> AsyncIterator[dict[str, AsyncEngine]]:
    engines = {r: create_async_engine(url) for r, url in simulators.agency_urls.items()}
    yield engines
    for engine in engines.values():
        await engine.dispose()


async def _snapshot(engines: dict[str, AsyncEngine]) -> dict[str, tuple[int, ...]]:
    """Row counts and the SSN sequence of every agency: equal snapshots, nothing written."""
    counts = {}
    for region, engine in engines.items():
        async with engine.connect() as conn:
            sizes = [
                (await conn.execute(select(func.count()).select_from(t))).scalar_one()
                for t in (enrollments, persons, enrollment_requests)
            ]
            sequence = (await conn.execute(select(ssn_sequences.c.next_value))).scalar_one()
        counts[region] = (*sizes, sequence)
    return counts


async def test_registering_assigns_an_ssn_that_the_permit_then_shows(
    hub: HubClient, simulators: Simulators
) -> None:
    (permit,) = _fresh_permits(simulators, "happy")
    body = await _register(hub, _input(permit))
    assert "errors" not in body, body
    result = body["data"]["registerEnrollment"]
    enrollment = result["enrollment"]
    assert result["created"] is True
    assert validate_ssn(enrollment["ssn"]).startswith(permit.work_location)
    assert enrollment["permitNumber"] == permit.number
    assert enrollment["region"] == {"code": permit.work_location}
    assert enrollment["status"] == "ACTIVE"
    shown = await hub.graphql(
        si_agency_of(permit.number), "query($n: ID!) { permit(number: $n) { enrollment { ssn } } }",
        {"n": permit.number},
    )
    assert shown.json()["data"]["permit"]["enrollment"] == {"ssn": enrollment["ssn"]}
    registered = (await _audited(hub))[-1]  # newest first: the registration is the oldest
    assert registered[:2] == ("OK", ())
    assert {permit.number, enrollment["ssn"]} <= set(registered[2])


async def test_names_match_whatever_their_case_and_spacing(
    hub: HubClient, simulators: Simulators
) -> None:
    (permit,) = _fresh_permits(simulators, "names")
    sloppy = "  " + "   ".join(permit.holder.name.upper().split()) + " "
    body = await _register(hub, _input(permit, name=sloppy))
    assert body["data"]["registerEnrollment"]["created"] is True, body


async def test_a_second_active_enrollment_of_a_permit_is_a_conflict_and_writes_nothing(
    hub: HubClient, simulators: Simulators, agency_engines: dict[str, AsyncEngine]
) -> None:
    (permit,) = _fresh_permits(simulators, "again")
    assert "errors" not in await _register(hub, _input(permit))
    before = await _snapshot(agency_engines)
    body = await _register(hub, _input(permit))
    assert _code(body) == "CONFLICT" and body["data"] is None
    assert await _snapshot(agency_engines) == before
    assert (await _audited(hub))[0][:2] == ("ERROR", ("CONFLICT",))


async def test_the_same_key_and_input_give_the_same_ssn_without_a_second_enrollment(
    hub: HubClient, simulators: Simulators, agency_engines: dict[str, AsyncEngine]
) -> None:
    (permit,) = _fresh_permits(simulators, "replay")
    given = _input(permit)
    first = (await _register(hub, given))["data"]["registerEnrollment"]
    before = await _snapshot(agency_engines)
    again = (await _register(hub, given))["data"]["registerEnrollment"]
    assert (first["created"], again["created"]) == (True, False)
    assert again["enrollment"] == first["enrollment"]
    assert await _snapshot(agency_engines) == before


async def test_the_same_key_with_other_input_is_a_conflict(
    hub: HubClient, simulators: Simulators, agency_engines: dict[str, AsyncEngine]
) -> None:
    permit, _ = _fresh_permits(simulators, "other_input")
    other = next(  # at the same agency, which keeps the key
        p for p in _fresh_permits(simulators, "other") if p.work_location == permit.work_location
    )
    key = f"test-{uuid.uuid4().hex}"
    assert "errors" not in await _register(hub, _input(permit, key))
    before = await _snapshot(agency_engines)
    changed = _input(permit, key, employerCreditCode=permit.employer.credit_code)
    moved = _input(other, key)
    for given in (changed, moved):
        body = await _register(hub, given)
        assert _code(body) == "CONFLICT", body
    assert await _snapshot(agency_engines) == before


async def test_a_reused_key_is_a_conflict_whatever_else_is_wrong_with_the_other_input(
    hub: HubClient, simulators: Simulators, agency_engines: dict[str, AsyncEngine]
) -> None:
    (permit,) = _fresh_permits(simulators, "key_first")
    (there,) = _fresh_permits(simulators, "key_elsewhere")
    assert there.work_location != permit.work_location
    other_region = next(r for r in AGENCY_REGIONS if r != permit.work_location)
    key = f"test-{uuid.uuid4().hex}"
    assert "errors" not in await _register(hub, _input(permit, key))
    before = await _snapshot(agency_engines)
    wms_before = (await simulators.stats(simulators.wms_url))["total"]
    reused = [
        _input(permit, key, name=permit.holder.name + " Junior"),  # not the holder's name
        _input(permit, key, region=other_region),  # not the permit's region
        _input(permit, key, nationality="ZZZ"),
        _input(there, key),  # another permit, at the other agency, sent by its own client
    ]
    for given in reused:
        body = await _register(hub, given)
        assert _code(body) == "CONFLICT" and body["data"] is None, (given, body)
        assert "idempotencyKey was used for another enrollment request" in (
            body["errors"][0]["message"]
        )
    assert await _snapshot(agency_engines) == before
    # Decided from the key alone: the WMS was not asked to check the other input.
    assert (await simulators.stats(simulators.wms_url))["total"] == wms_before
    recorded = [(outcome, codes) for outcome, codes, _ in await _audited(hub)]
    assert recorded[: len(reused)] == [("ERROR", ("CONFLICT",))] * len(reused)
    # Before the key: an identifier that cannot be read, and a permit not the client's to ask.
    malformed = _input(permit, key, permitNumber=_wrong_check(permit.number))
    response = await hub.graphql(si_agency_of(permit.number), REGISTER, {"i": malformed})
    assert response.status_code == 400 and _code(response.json()) == "BAD_USER_INPUT"
    outside = await hub.graphql(si_agency_of(permit.number), REGISTER, {"i": _input(there, key)})
    assert _code(outside.json()) == "FORBIDDEN"
    assert await _snapshot(agency_engines) == before


def _wrong_check(number: str) -> str:
    return number[:17] + ("0" if mod11_2_check_char(number[:17]) != "0" else "1")


async def test_bad_input_gets_a_typed_error_and_writes_nothing(
    hub: HubClient, simulators: Simulators, agency_engines: dict[str, AsyncEngine]
) -> None:
    (permit,) = _fresh_permits(simulators, "mismatch")
    local = [p for p in simulators.dataset.permits.values() if p.work_location in AGENCY_REGIONS]
    expired = next(p for p in local if p.status is PermitStatus.EXPIRED)
    cancelled = next(p for p in local if p.status is PermitStatus.CANCELLED)
    elsewhere = next(r for r in AGENCY_REGIONS if r != permit.work_location)
    unknown = permit.number[:10] + "9999999"
    unknown += mod11_2_check_char(unknown)
    other_employer = next(
        p.employer.credit_code for p in simulators.dataset.permits.values()
        if p.employer.credit_code != permit.employer.credit_code
    )
    checked_before_execution = [
        _input(permit, permitNumber=_wrong_check(permit.number)),
        _input(permit, region="999999"),  # not a GB/T 2260 code the hub knows
        _input(permit, region="110000"),  # known, but no agency of the hub serves it
        _input(permit, employerCreditCode="91420100MA4K00000X"),
        _input(permit, permitNumber="'; DROP TABLE enrollments; --"),
    ]
    checked_by_the_workflow = [
        _input(expired),
        _input(cancelled),
        _input(permit, region=elsewhere),  # an enrollment is made in its permit's region
        _input(permit, permitNumber=unknown),
        _input(permit, name=permit.holder.name + " Junior"),
        _input(permit, nationality="ZZZ"),
        _input(permit, employerCreditCode=other_employer),
        _input(permit, idempotencyKey="short"),
    ]
    before = await _snapshot(agency_engines)
    calls = await simulators.upstream_calls()
    for given in checked_before_execution:
        response = await hub.graphql(si_agency_of(permit.number), REGISTER, {"i": given})
        assert response.status_code == 400, (given, response.text)
        assert _code(response.json()) == "BAD_USER_INPUT"
    assert await simulators.upstream_calls() == calls
    for given in checked_by_the_workflow:
        body = await _register(hub, given)
        assert _code(body) == "BAD_USER_INPUT", (given, body)
        assert body["data"] is None
    assert await _snapshot(agency_engines) == before
    recorded = [(outcome, codes) for outcome, codes, _ in await _audited(hub)]
    attempts = len(checked_before_execution) + len(checked_by_the_workflow)
    assert recorded == [("ERROR", ("BAD_USER_INPUT",))] * attempts


async def test_a_client_without_enrollment_write_cannot_register(
    hub: HubClient, simulators: Simulators, agency_engines: dict[str, AsyncEngine]
) -> None:
    (permit,) = _fresh_permits(simulators, "forbidden")
    before = await _snapshot(agency_engines)
    calls = await simulators.upstream_calls()
    response = await hub.graphql("ssc-card-center-hubei", REGISTER, {"i": _input(permit)})
    assert response.status_code == 403 and _code(response.json()) == "FORBIDDEN"
    assert await simulators.upstream_calls() == calls
    assert await _snapshot(agency_engines) == before


async def test_mutations_are_not_served_over_get(
    hub: HubClient, simulators: Simulators, agency_engines: dict[str, AsyncEngine]
) -> None:
    """A registration sent by GET, by a client allowed to register, with a valid token and
    purpose: 405 `Allow: POST`, nothing written, nothing asked of a source system."""
    (permit,) = _fresh_permits(simulators, "by_get")
    before = await _snapshot(agency_engines)
    calls = await simulators.upstream_calls()
    response = await hub.http.get(
        "/graphql",
        params={"query": REGISTER, "variables": orjson.dumps({"i": _input(permit)}).decode()},
        headers={
            "authorization": f"Bearer {await hub.token(AGENCY)}",
            "x-purpose-of-use": "social-insurance-enrollment",
        },
    )
    assert response.status_code == 405 and response.headers["allow"] == "POST"
    assert _code(response.json()) == "BAD_USER_INPUT"
    assert await simulators.upstream_calls() == calls
    assert await _snapshot(agency_engines) == before


async def test_fifty_parallel_registrations_get_fifty_distinct_ssns(
    hub: HubClient, simulators: Simulators
) -> None:
    permits = _fresh_permits(simulators, "parallel")
    assert len(permits) == 50
    bodies = await asyncio.gather(*(_register(hub, _input(p)) for p in permits))
    assert all("errors" not in b for b in bodies), [b for b in bodies if "errors" in b][:3]
    ssns = {b["data"]["registerEnrollment"]["enrollment"]["ssn"] for b in bodies}
    assert len(ssns) == 50
    assert all(validate_ssn(s)[:6] in AGENCY_REGIONS for s in ssns)


async def test_twenty_parallel_calls_with_one_key_give_one_ssn(
    hub: HubClient, simulators: Simulators, agency_engines: dict[str, AsyncEngine]
) -> None:
    (permit,) = _fresh_permits(simulators, "one_key")
    given = _input(permit)
    bodies = await asyncio.gather(*(_register(hub, given) for _ in range(20)))
    assert all("errors" not in b for b in bodies), [b for b in bodies if "errors" in b][:3]
    results = [b["data"]["registerEnrollment"] for b in bodies]
    assert len({r["enrollment"]["ssn"] for r in results}) == 1
    assert sorted(r["created"] for r in results) == [False] * 19 + [True]
    engine = agency_engines[permit.work_location]
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                select(func.count()).where(enrollments.c.permit_number == permit.number)
            )
        ).scalar_one()
    assert rows == 1
