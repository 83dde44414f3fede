"""Issue 18: enrollment in jurisdiction, and one person, one live enrollment, nationally.

The double enrollment of the issue replayed on the session's data (it writes nothing there);
the races, the cut-short claim and `hub check duplicates` on agency databases of the test's own,
seeded like the session's, since they enroll or plant records.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import create_async_engine

from connectors.agency_tables import enrollment_requests, enrollments, persons, ssn_sequences
from connectors.identifiers import make_ssn
from connectors.records import EnrollmentStatus, Permit
from hub.admin import admin_services
from hub.demo_clients import seed_demo_clients
from hub.tables import enrollment_claims
from observability.audit import AuditFilter
from simulators import seed_agency_databases
from tests.conftest import (
    AGENCY_REGIONS,
    HubClient,
    Simulators,
    SqlCounter,
    _drop_prefix,
    hub_settings,
    open_hub,
    si_agency_of,
)
from tests.hub.test_cli import PROJECT
from tests.hub.test_two_instances import _free_port, _serve_env, _wait_healthy
from tests.services import POSTGRES_URL, REDIS_URL, fresh_database, private_redis

REGISTER = """mutation($i: RegisterEnrollmentInput!) {
  registerEnrollment(input: $i) { created enrollment { ssn region { code } status } } }"""
PURPOSE = "social-insurance-enrollment"
WUHAN, YICHANG = "420100", "420500"


def _input(permit: Permit, key: str | None = None, **changes: Any) -> dict[str, Any]:
    given = {
        "permitNumber": permit.number,
        "name": permit.holder.name,
        "nationality": permit.holder.nationality,
        "idempotencyKey": key or f"one-{uuid.uuid4().hex}",
    }
    return {**given, **changes}


def _error(body: dict[str, Any]) -> dict[str, Any]:
    error: dict[str, Any] = body["errors"][0]
    return error


async def _rows(urls: dict[str, str]) -> dict[str, tuple[int, ...]]:
    """Row counts and the SSN sequence of every agency: equal snapshots, nothing written."""
    counts = {}
    for region, url in urls.items():
        engine = create_async_engine(url)
        try:
            async with engine.connect() as conn:
                sizes = [
                    (await conn.execute(select(func.count()).select_from(t))).scalar_one()
                    for t in (enrollments, persons, enrollment_requests)
                ]
                sequence = (await conn.execute(select(ssn_sequences.c.next_value))).scalar_one()
        finally:
            await engine.dispose()
        counts[region] = (*sizes, sequence)
    return counts


async def _enrollments_of(urls: dict[str, str], person: str) -> list[tuple[str, str, str]]:
    """(region, SSN, status) of every enrollment of the person at every agency."""
    found = []
    for region, url in sorted(urls.items()):
        engine = create_async_engine(url)
        try:
            async with engine.connect() as conn:
                rows = await conn.execute(
                    select(enrollments.c.ssn, enrollments.c.status)
                    .where(enrollments.c.person_id == person)
                )
                found += [(region, ssn, status) for ssn, status in rows]
        finally:
            await engine.dispose()
    return sorted(found)


async def _records(hub: HubClient, subject: str) -> list[tuple[str, tuple[str, ...]]]:
    page = await hub.hub.audit.search(
        AuditFilter(subject=subject), 50, None, subject_view=False, today=dt.date.today()
    )
    return [(r.outcome, tuple(r.error_codes)) for r in page.records if r.kind == "graphql"]


# -- on the session's data: refusals only, nothing written ---------------------------------------


async def test_the_double_enrollment_of_the_issue_is_refused(
    hub: HubClient, simulators: Simulators
) -> None:
    """The person enrolled at Wuhan who also holds a Yichang permit: Yichang gets CONFLICT."""
    dataset = simulators.dataset
    yichang = dataset.permits[dataset.samples["enrolled_elsewhere_permit"]]
    (wuhan_ssn,) = [
        e.ssn for e in dataset.enrollments.values()
        if dataset.permits[e.permit_number].holder.id == yichang.holder.id
    ]
    before = await _rows(simulators.agency_urls)
    response = await hub.graphql("si-agency-yichang", REGISTER, {"i": _input(yichang)},
                                 purpose=PURPOSE)
    body = response.json()
    assert body["data"] is None
    error = _error(body)
    assert error["extensions"]["code"] == "CONFLICT"
    assert error["extensions"]["existingRegion"] == WUHAN
    assert wuhan_ssn not in response.text  # the other region's SSN is not Yichang's to read
    assert await _rows(simulators.agency_urls) == before
    assert await _records(hub, yichang.number) == [("ERROR", ("CONFLICT",))]


async def test_an_agency_may_not_enroll_a_permit_of_another_region(
    hub: HubClient, simulators: Simulators
) -> None:
    """si-agency-wuhan and a Yichang permit: FORBIDDEN before the WMS or an agency is asked."""
    dataset = simulators.dataset
    permit = next(
        p for p in sorted(dataset.permits.values(), key=lambda p: p.number)
        if p.work_location == YICHANG and p.is_valid_on(dataset.today)
    )
    sql = SqlCounter(hub.hub)
    before = await _rows(simulators.agency_urls)
    calls = await simulators.upstream_calls()
    for given in (_input(permit), _input(permit, region=YICHANG), _input(permit, region=WUHAN)):
        response = await hub.graphql("si-agency-wuhan", REGISTER, {"i": given}, purpose=PURPOSE)
        body = response.json()
        assert body["data"] is None
        assert _error(body)["extensions"]["code"] == "FORBIDDEN", body
        assert _error(body)["extensions"]["reason"] == "OUT_OF_JURISDICTION"
    assert await simulators.upstream_calls() == calls
    assert sql.counts == {}
    assert await _rows(simulators.agency_urls) == before
    assert await _records(hub, permit.number) == [("DENIED", ("FORBIDDEN",))] * 3


async def test_a_person_an_agency_already_enrolled_is_refused_and_not_held(
    hub: HubClient, simulators: Simulators
) -> None:
    """Enrolled before the hub kept the rule (the seeded data): the agency refuses, and the
    hub lets go of its claim, so the refusal holds no one."""
    dataset = simulators.dataset
    permit = dataset.permits[dataset.samples["enrolled_permit"]]
    before = await _rows(simulators.agency_urls)
    body = (await hub.graphql(si_agency_of(permit.number), REGISTER, {"i": _input(permit)},
                              purpose=PURPOSE)).json()
    assert _error(body)["extensions"]["code"] == "CONFLICT"
    assert _error(body)["extensions"]["existingRegion"] == permit.work_location
    assert await _rows(simulators.agency_urls) == before
    async with hub.hub.engine.connect() as conn:
        held = (await conn.execute(select(func.count()).select_from(enrollment_claims)))
        assert held.scalar_one() == 0


# -- on agency databases of the test's own --------------------------------------------------------


@pytest.fixture
async def own(simulators: Simulators, tmp_path: Path) -> AsyncIterator[Simulators]:
    """The session's simulators with agency databases of this test's own, seeded alike."""
    async with AsyncExitStack() as stack:
        urls = {
            region: await stack.enter_async_context(fresh_database(tmp_path, f"own{region}"))
            for region in AGENCY_REGIONS
        }
        await seed_agency_databases(simulators.dataset, urls)
        yield replace(simulators, agency_urls=urls)


async def _two_region_person(own: Simulators) -> tuple[Permit, Permit]:
    """The holder of a Wuhan and a Yichang VALID permit, enrolled nowhere: the sample's holder,
    whose Wuhan enrollment is ended in this test's databases."""
    dataset = own.dataset
    yichang = dataset.permits[dataset.samples["enrolled_elsewhere_permit"]]
    (wuhan,) = [
        dataset.permits[n] for n in dataset.permits_by_holder[yichang.holder.id]
        if n[:6] == WUHAN and dataset.permits[n].is_valid_on(dataset.today)
    ]
    engine = create_async_engine(own.agency_urls[WUHAN])
    try:
        async with engine.begin() as conn:
            await conn.execute(
                update(enrollments).where(enrollments.c.person_id == yichang.holder.id)
                .values(status=EnrollmentStatus.TERMINATED.value)
            )
    finally:
        await engine.dispose()
    return wuhan, yichang


Send = Any  # (client id, given input, instance index) -> response body


Race = list[tuple[str, dict[str, Any], dict[str, Any]]]  # (client, input, answer) each


async def _race(send: Send, wuhan: Permit, yichang: Permit, n: int) -> Race:
    """n registrations of one person at once, half from each region's agency, each with its own
    key, spread over the instances."""
    given = []
    for i in range(n):
        permit = wuhan if i % 2 == 0 else yichang
        given.append((si_agency_of(permit.number), _input(permit), i // 2))
    bodies = await asyncio.gather(*(send(*g) for g in given))
    return [(who, i, body) for (who, i, _), body in zip(given, bodies, strict=True)]


async def _one_winner(race: Race, own: Simulators, person: str) -> tuple[str, dict[str, Any]]:
    """Exactly one enrollment made, every other request CONFLICT naming its region; the
    agencies hold exactly one ACTIVE enrollment (one new SSN) of the person. The winner's
    (client, input)."""
    made = [(who, given, body) for who, given, body in race if not body.get("errors")]
    assert len(made) == 1, [body for _, _, body in race]
    (who, given, body) = made[0]
    enrollment = body["data"]["registerEnrollment"]["enrollment"]
    region = enrollment["region"]["code"]
    refused = [_error(body)["extensions"] for _, _, body in race if body.get("errors")]
    assert [(e["code"], e["existingRegion"]) for e in refused] == [("CONFLICT", region)] * (
        len(race) - 1
    )
    held = await _enrollments_of(own.agency_urls, person)
    active = [(r, ssn) for r, ssn, status in held if status == "ACTIVE"]
    assert active == [(region, enrollment["ssn"])]
    assert len(held) == 2  # the ended Wuhan one, and the new one: no second SSN was given
    return who, given


async def _after_the_race(
    send: Send, race: Race, winner: tuple[str, dict[str, Any]], wuhan: Permit, yichang: Permit,
    own: Simulators,
) -> None:
    """The winner's retry (same key) replays on either instance; the losing agency, trying
    again with a new key, still gets CONFLICT; nothing is written by either."""
    who, given = winner
    first = next(body for _, g, body in race if g is given)["data"]["registerEnrollment"]
    region = first["enrollment"]["region"]["code"]
    lost = yichang if region == WUHAN else wuhan
    before = await _rows(own.agency_urls)
    for turn in (0, 1):
        again = (await send(who, given, turn))["data"]["registerEnrollment"]
        assert again == {**first, "created": False}
    for permit in (lost, wuhan if lost is yichang else yichang):  # and the winner, a new key
        refused = await send(si_agency_of(permit.number), _input(permit), 1)
        assert _error(refused)["extensions"]["existingRegion"] == region
    assert await _rows(own.agency_urls) == before


async def test_sixteen_racing_registrations_of_one_person_give_one_enrollment(
    own: Simulators, database_url: str, tmp_path: Path
) -> None:
    """One hub instance, concurrent requests (SQLite, or PostgreSQL when configured)."""
    wuhan, yichang = await _two_region_person(own)
    async with open_hub(own, database_url, tmp_path) as hub:

        async def send(client: str, given: dict[str, Any], _: int) -> dict[str, Any]:
            response = await hub.graphql(client, REGISTER, {"i": given}, purpose=PURPOSE)
            body: dict[str, Any] = response.json()
            return body

        for client in ("si-agency-wuhan", "si-agency-yichang"):
            await hub.token(client)  # before the race: it is about the writes
        race = await _race(send, wuhan, yichang, 16)
        winner = await _one_winner(race, own, wuhan.holder.id)
        await _after_the_race(send, race, winner, wuhan, yichang, own)


async def test_a_retry_with_the_same_key_after_success_replays(
    own: Simulators, database_url: str, tmp_path: Path
) -> None:
    wuhan, yichang = await _two_region_person(own)
    async with open_hub(own, database_url, tmp_path) as hub:
        given = _input(yichang)
        first = (await hub.graphql("si-agency-yichang", REGISTER, {"i": given},
                                   purpose=PURPOSE)).json()
        before = await _rows(own.agency_urls)
        again = (await hub.graphql("si-agency-yichang", REGISTER, {"i": given},
                                   purpose=PURPOSE)).json()
        assert first["data"]["registerEnrollment"]["created"] is True, first
        assert again["data"]["registerEnrollment"]["created"] is False, again
        assert again["data"]["registerEnrollment"]["enrollment"] == (
            first["data"]["registerEnrollment"]["enrollment"]
        )
        assert await _rows(own.agency_urls) == before
        other = (await hub.graphql("si-agency-wuhan", REGISTER, {"i": _input(wuhan)},
                                   purpose=PURPOSE)).json()
        assert _error(other)["extensions"] | {"traceId": ""} == {
            "code": "CONFLICT", "existingRegion": YICHANG, "traceId": ""
        }
        assert await _rows(own.agency_urls) == before


async def _plant_claim(hub: HubClient, person: str, region: str, age: dt.timedelta) -> None:
    async with hub.hub.engine.begin() as conn:
        await conn.execute(insert(enrollment_claims).values(
            person_id=person, claim_id=str(uuid.uuid4()), region=region,
            idempotency_key=f"crashed-{uuid.uuid4().hex}", request_hash="0" * 64, ssn=None,
            claimed_at=dt.datetime.now(dt.UTC) - age,
        ))


async def test_a_claim_cut_short_blocks_the_person_only_while_its_write_may_be_under_way(
    own: Simulators, database_url: str, tmp_path: Path
) -> None:
    """A hub that claimed a person and died before its agency wrote: while the claim is young
    the person is refused (the write may still land); once stale, the agencies are asked,
    they hold nothing, and the person is enrolled."""
    dataset = own.dataset
    enrolled = {e.permit_number for e in dataset.enrollments.values()}
    young, old = [
        p for p in sorted(dataset.permits.values(), key=lambda p: p.number)
        if p.work_location == WUHAN and p.is_valid_on(dataset.today) and p.number not in enrolled
        and p.number not in dataset.samples.values()
    ][:2]
    async with open_hub(own, database_url, tmp_path) as hub:
        await _plant_claim(hub, young.holder.id, YICHANG, dt.timedelta(seconds=1))
        await _plant_claim(hub, old.holder.id, YICHANG, dt.timedelta(hours=1))
        before = await _rows(own.agency_urls)
        refused = (await hub.graphql("si-agency-wuhan", REGISTER, {"i": _input(young)},
                                     purpose=PURPOSE)).json()
        assert _error(refused)["extensions"]["code"] == "CONFLICT"
        assert _error(refused)["extensions"]["existingRegion"] == YICHANG
        assert await _rows(own.agency_urls) == before
        made = (await hub.graphql("si-agency-wuhan", REGISTER, {"i": _input(old)},
                                  purpose=PURPOSE)).json()
        assert made["data"]["registerEnrollment"]["created"] is True, made
        assert [r for r, _, s in await _enrollments_of(own.agency_urls, old.holder.id)
                if s == "ACTIVE"] == [WUHAN]


@pytest.mark.skipif(POSTGRES_URL is None, reason="several hub instances share a PostgreSQL")
async def test_two_hub_instances_racing_for_one_person_give_one_enrollment(
    own: Simulators, database_url: str, tmp_path: Path
) -> None:
    wuhan, yichang = await _two_region_person(own)
    prefix = f"test:{uuid.uuid4().hex[:12]}:"
    settings = hub_settings(own, database_url, tmp_path, prefix)
    async with admin_services(settings) as admin:  # migrate and seed once, before both start
        secrets = {
            str(c["client_id"]): str(c["client_secret"])
            for c in await seed_demo_clients(admin.auth)
        }
    async with AsyncExitStack() as stack:
        redis_url = REDIS_URL
        if redis_url is None:  # two instances need a shared store; a private one will do
            redis_url = await stack.enter_async_context(private_redis())
        env = _serve_env(own, database_url, tmp_path, settings, prefix)
        env["HUB_REDIS_URL"] = redis_url
        ports = [_free_port(), _free_port()]
        processes = [
            await asyncio.create_subprocess_exec(
                sys.executable, "-m", "hub", "serve", "--port", str(port), env=env, cwd=PROJECT,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
            for port in ports
        ]
        urls = [f"http://127.0.0.1:{port}" for port in ports]
        try:
            await asyncio.gather(*(_wait_healthy(u, p) for u, p in zip(urls, processes,
                                                                       strict=True)))
            async with httpx.AsyncClient(timeout=60) as client:
                tokens = {}
                for client_id in ("si-agency-wuhan", "si-agency-yichang"):
                    response = await client.post(
                        urls[0] + "/oauth/token", data={"grant_type": "client_credentials"},
                        auth=(client_id, secrets[client_id]),
                    )
                    tokens[client_id] = response.json()["access_token"]

                async def send(who: str, given: dict[str, Any], turn: int) -> dict[str, Any]:
                    response = await client.post(
                        urls[turn % 2] + "/graphql",
                        json={"query": REGISTER, "variables": {"i": given}},
                        headers={"authorization": f"Bearer {tokens[who]}",
                                 "x-purpose-of-use": PURPOSE},
                    )
                    body: dict[str, Any] = response.json()
                    return body

                race = await _race(send, wuhan, yichang, 16)
                winner = await _one_winner(race, own, wuhan.holder.id)
                await _after_the_race(send, race, winner, wuhan, yichang, own)
        finally:
            for process in processes:
                process.terminate()
                await process.wait()
            await _drop_prefix(prefix)


# -- hub check duplicates -------------------------------------------------------------------------


async def _check_duplicates(own: Simulators, tmp_path: Path) -> tuple[int, str, str]:
    env: dict[str, str] = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env = env | {
        "HUB_AGENCY_DATABASES": json.dumps(own.agency_urls),
        "HUB_WMS_URL": own.wms_url,
        "HUB_CARDS_URL": own.cards_url,
        "HUB_DATA_DIR": str(tmp_path),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hub", "check", "duplicates", cwd=PROJECT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    assert "Traceback" not in err.decode(), err.decode()
    return process.returncode, out.decode(), err.decode()


async def test_check_duplicates_finds_a_person_enrolled_at_two_agencies(
    own: Simulators, tmp_path: Path
) -> None:
    clean = await _check_duplicates(own, tmp_path)
    assert clean[0] == 0, clean
    assert WUHAN in clean[1] and YICHANG in clean[1] and own.wms_url in clean[1]
    assert "none found" in clean[1]
    # Planted straight into the Yichang agency's database, as an agency writing alone could.
    dataset = own.dataset
    yichang = dataset.permits[dataset.samples["enrolled_elsewhere_permit"]]
    (wuhan_ssn,) = [e.ssn for e in dataset.enrollments.values()
                    if dataset.permits[e.permit_number].holder.id == yichang.holder.id]
    planted = make_ssn(YICHANG, 99_999_999)
    engine = create_async_engine(own.agency_urls[YICHANG])
    try:
        async with engine.begin() as conn:
            await conn.execute(insert(enrollments).values(
                ssn=planted, permit_number=yichang.number, person_id=yichang.holder.id,
                region=YICHANG, status="ACTIVE", enrolled_on=dataset.today,
                name=yichang.holder.name, nationality=yichang.holder.nationality,
                employer_credit_code=yichang.employer.credit_code,
                created_at=dt.datetime.now(dt.UTC),
            ))
    finally:
        await engine.dispose()
    before = await _rows(own.agency_urls)
    code, out, _ = await _check_duplicates(own, tmp_path)
    assert code == 1, out
    found = [line for line in out.splitlines() if line.startswith("enrollments: ")]
    assert len(found) == 1, out
    assert yichang.holder.id in found[0]
    assert wuhan_ssn in found[0] and planted in found[0]
    assert yichang.holder.passport_number not in out
    assert await _rows(own.agency_urls) == before  # reported, never merged
