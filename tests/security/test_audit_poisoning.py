"""Poisoning the audit log: client-controlled text that would make a record unwritable or huge.

The attacks of the black-box report, reproduced over HTTP (and WebSocket, and against a real
`hub serve` process for proxy headers): a NUL or a 250,000-character `operationName` on the
introspection path, a NUL in the client id a token request claims, and `X-Forwarded-For`.
Each must be refused or neutralised, recorded without the raw text, and must cost another
client nothing: its concurrent requests are answered 200 meanwhile. Below the HTTP layer, a
record the store still rejects (the sanitiser bypassed) fails its own append alone; the rest of
its group-commit batch commits and the chain verifies. Run on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import subprocess
import sys
import unicodedata
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy.ext.asyncio import create_async_engine
from websockets.asyncio.client import connect

from hub.admin import admin_services
from hub.app import create_app
from hub.demo_clients import DEMO_AGENCIES, OFFICER_PURPOSES, seed_demo_clients
from observability.audit import (
    AuditEvent,
    AuditFilter,
    AuditLog,
    AuditRecord,
    AuditUnavailable,
    LocalSigner,
)
from tests.conftest import HubClient, Simulators, _drop_prefix, hub_settings, purpose_for
from tests.hub.test_two_instances import _free_port, _serve_env, _wait_healthy
from tests.observability.conftest import event
from tests.services import POSTGRES_URL
from tests.simulators.servers import serve

ATTACKER = "si-agency-wuhan"
VICTIM = "exit-entry-wuhan"
INTROSPECTION = "{ __schema { queryType { name } } }"
PERMIT = "query($n: ID!) { permit(number: $n) { number status } }"
# Field caps of the audit record (observability.audit._bounds documents them).
OPERATION_CAP, CLIENT_ID_CAP = 256, 128


def _purpose(client_id: str) -> str:
    own = next(a for a in DEMO_AGENCIES if a.client_id == client_id).purposes
    return sorted(own - OFFICER_PURPOSES)[0]  # one its own token may use


async def _headers(hub: HubClient, client_id: str) -> dict[str, str]:
    return {
        "authorization": f"Bearer {await hub.token(client_id)}",
        "x-purpose-of-use": _purpose(client_id),
    }


async def _records(hub: HubClient, **where: Any) -> list[AuditRecord]:
    """The GraphQL access records matching `where` (not the token issuances)."""
    page = await hub.hub.audit.search(
        AuditFilter(**where), 500, None, subject_view=False, today=dt.date.today()
    )
    return [r for r in page.records if r.kind == "graphql"]


def _safe(text: str | None) -> bool:
    """No control, format or surrogate character: what an auditor's terminal shows as is."""
    return text is None or not any(
        unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp") for c in text
    )


async def _victim_queries(hub: HubClient, simulators: Simulators, count: int) -> list[int]:
    headers = await _headers(hub, VICTIM)
    numbers = sorted(simulators.dataset.permits)[:count]

    async def one(number: str) -> int:
        response = await hub.http.post(
            "/graphql", json={"query": PERMIT, "variables": {"n": number}}, headers=headers
        )
        return response.status_code

    return list(await asyncio.gather(*(one(n) for n in numbers)))


HOSTILE_NAMES = {
    "nul": "\u0000",
    "250k-characters": "A" * 250_000,
    "control-characters": "\u0000\u001b[31mAdmin\u202e",
    "valid-but-absent": "SomeOtherOperation",
}


@pytest.mark.parametrize("name", list(HOSTILE_NAMES.values()), ids=list(HOSTILE_NAMES))
async def test_a_hostile_operation_name_on_introspection_is_refused_and_costs_others_nothing(
    hub: HubClient, simulators: Simulators, name: str
) -> None:
    """Ten attacker connections send introspection queries naming no operation of theirs while
    another client reads permits: the attacks get BAD_USER_INPUT, recorded without the name;
    every one of the other client's requests is answered."""
    attacker = await _headers(hub, ATTACKER)
    payload = {"query": INTROSPECTION, "operationName": name}

    async def attack() -> list[httpx.Response]:
        return [await hub.http.post("/graphql", json=payload, headers=attacker) for _ in range(3)]

    attacks, victims = await asyncio.gather(
        asyncio.gather(*(attack() for _ in range(10))), _victim_queries(hub, simulators, 40)
    )

    refused = [r for batch in attacks for r in batch]
    assert {r.status_code for r in refused} == {400}
    assert {r.json()["errors"][0]["extensions"]["code"] for r in refused} == {"BAD_USER_INPUT"}
    assert victims == [200] * 40
    recorded = await _records(hub, client_id=ATTACKER)
    assert len(recorded) == len(refused)
    assert {(r.outcome, r.operation, r.error_codes) for r in recorded} == {
        ("ERROR", None, ("BAD_USER_INPUT",))
    }
    assert len(await _records(hub, client_id=VICTIM)) == 40
    assert (await hub.hub.audit.verify()).ok


DOCUMENTS = {
    "introspection": INTROSPECTION,
    "planned-query": '{ permit(number: "420100202400000018") { number status } }',
    "named-query": 'query Check { permit(number: "420100202400000018") { number } }',
    "two-operations": "query A { __typename } query B { __typename }",
}


@pytest.mark.parametrize("document", list(DOCUMENTS.values()), ids=list(DOCUMENTS))
@pytest.mark.parametrize("name", ["\u0000", "Z" * 300], ids=["nul", "300-characters"])
async def test_every_path_records_only_a_validated_operation_name(
    hub: HubClient, document: str, name: str
) -> None:
    response = await hub.http.post(
        "/graphql",
        json={"query": document, "operationName": name},
        headers=await _headers(hub, ATTACKER),
    )

    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    [record] = await _records(hub, client_id=ATTACKER)
    assert record.operation is None
    assert record.error_codes == ("BAD_USER_INPUT",)


async def test_a_named_introspection_records_its_name(hub: HubClient) -> None:
    response = await hub.http.post(
        "/graphql",
        json={"query": "query Schema { __schema { types { name } } }", "operationName": "Schema"},
        headers=await _headers(hub, ATTACKER),
    )

    assert response.status_code == 200, response.text
    [record] = await _records(hub, client_id=ATTACKER)
    assert (record.operation, record.outcome) == ("Schema", "OK")


async def test_a_refusal_before_parsing_records_no_operation_name(hub: HubClient) -> None:
    too_large = "{" + " a" * 9000 + "}"
    response = await hub.http.post(
        "/graphql",
        json={"query": too_large, "operationName": "\u0000" * 1000},
        headers=await _headers(hub, ATTACKER),
    )

    assert response.status_code == 400
    [record] = await _records(hub, client_id=ATTACKER)
    assert record.operation is None


async def test_a_nul_in_a_claimed_client_id_is_recorded_neutralised(
    hub: HubClient, simulators: Simulators
) -> None:
    """The token endpoint audits the client id a refused request claims: a NUL there must not
    make that record (and its batch) unwritable."""

    async def attack() -> httpx.Response:
        return await hub.http.post(
            "/oauth/token", data={"grant_type": "client_credentials"},
            auth=("\u0000evil\u001b", "secret"),
        )

    await hub.token(VICTIM)  # the victim's own token first: the attack is on its queries
    attacks, victims = await asyncio.gather(
        asyncio.gather(*(attack() for _ in range(10))), _victim_queries(hub, simulators, 30)
    )

    assert {r.status_code for r in attacks} == {401}
    assert victims == [200] * 30
    page = await hub.hub.audit.search(
        AuditFilter(outcome="DENIED"), 50, None, subject_view=False, today=dt.date.today()
    )
    refusals = [r for r in page.records if r.kind == "token"]
    assert len(refusals) == 10
    assert {r.client_id for r in refusals} == {"\ufffdevil\ufffd"}
    assert (await hub.hub.audit.verify()).ok


async def test_a_hostile_operation_name_over_websocket_is_refused_and_recorded_without_it(
    simulators: Simulators, database_url: str, tmp_path: Path
) -> None:
    prefix = f"test:{uuid.uuid4().hex[:12]}:"
    settings = hub_settings(simulators, database_url, tmp_path, prefix)
    app = create_app(settings)
    try:
        async with serve(app, ws="websockets-sansio") as url, httpx.AsyncClient() as http:
            seeded = await seed_demo_clients(app.state.hub.auth)
            secret = next(str(c["client_secret"]) for c in seeded if c["client_id"] == VICTIM)
            token = (
                await http.post(
                    url + "/oauth/token", data={"grant_type": "client_credentials"},
                    auth=(VICTIM, secret),
                )
            ).json()["access_token"]
            async with connect(
                url.replace("http://", "ws://") + "/graphql",
                subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
            ) as ws:
                query = "subscription S { permitStatusChanged { permitNumber } }"
                purpose = purpose_for(VICTIM, query)  # one covering it: the name is what's wrong
                init = {"Authorization": f"Bearer {token}", "X-Purpose-Of-Use": purpose}
                await ws.send(orjson.dumps({"type": "connection_init", "payload": init}).decode())
                assert orjson.loads(await ws.recv())["type"] == "connection_ack"
                payload = {"query": query, "operationName": "\u0000" + "S" * 5000}
                message = {"id": "1", "type": "subscribe", "payload": payload}
                await ws.send(orjson.dumps(message).decode())
                answer = orjson.loads(await asyncio.wait_for(ws.recv(), 10))
            assert answer["type"] == "error"
            assert answer["payload"][0]["extensions"]["code"] == "BAD_USER_INPUT"
            page = await app.state.hub.audit.search(
                AuditFilter(client_id=VICTIM), 50, None, subject_view=False,
                today=dt.date.today(),
            )
            [refusal] = [r for r in page.records if r.kind == "subscription" and r.error_codes]
            assert refusal.error_codes == ("BAD_USER_INPUT",)
            assert refusal.operation == "subscribe"
    finally:
        await _drop_prefix(prefix)


# -- the record boundary: bounded text, and a rejected record fails alone ----------------------


@pytest.fixture
async def log(database_url: str) -> AsyncIterator[AuditLog]:
    """The real audit log on this test's database, group commit on."""
    engine = create_async_engine(database_url)
    audit = AuditLog(engine, LocalSigner(), checkpoint_every=10, checkpoint_seconds=3600)
    await audit.start(create_tables=True)
    yield audit
    await audit.close()
    await engine.dispose()


async def test_every_text_field_of_a_record_is_bounded_and_printable(
    log: AuditLog,
) -> None:
    hostile = "\u0000\u0007\u001b[2J\u202e\ud800" + "x" * 10_000
    stored = await log.append(
        event(
            1, client_id=hostile, agency=hostile, purpose=hostile, operation=hostile,
            document_hash=hostile, trace_id=hostile, client_address=hostile,
            response_sha256=hostile, fields=(hostile,), subjects=(hostile,),
            denied=(hostile,), error_codes=(hostile,),
        )
    )

    record = await log.get(stored.id)
    assert record == stored
    texts = [
        record.client_id, record.agency, record.purpose, record.operation,
        record.document_hash, record.trace_id, record.client_address, record.response_sha256,
        *record.fields, *record.subjects, *record.denied, *record.error_codes,
    ]
    assert all(_safe(t) for t in texts)
    assert len(record.operation or "") == OPERATION_CAP
    assert len(record.client_id or "") == CLIENT_ID_CAP
    assert max(len(t or "") for t in texts) <= OPERATION_CAP
    assert (await log.verify()).ok


def _poisons() -> dict[str, dict[str, Any]]:
    """Fields no store accepts (a lone surrogate cannot even be hashed), and on PostgreSQL, the
    ones it rejects: each set on the event after construction, as a sanitiser bug would."""
    found: dict[str, dict[str, Any]] = {"lone-surrogate": {"operation": "\ud800"}}
    if POSTGRES_URL is not None:
        found["nul"] = {"operation": "\u0000"}
        found["operation-over-256"] = {"operation": "Q" * 300}
        found["nul-in-subject"] = {"subjects": ("4201\u0000",)}
    return found


POISONS = _poisons()


@pytest.mark.parametrize("poison", list(POISONS.values()), ids=list(POISONS))
async def test_a_record_the_store_rejects_fails_alone_and_its_batch_commits(
    log: AuditLog, poison: dict[str, Any]
) -> None:
    events = [event(i) for i in range(12)]
    bad = events[5]
    for name, value in poison.items():
        object.__setattr__(bad, name, value)  # past the sanitiser, as a bug in it would be
    body = b'{"data":{}}'

    async def one(index: int, item: AuditEvent) -> Any:
        if index % 2:
            return await log.append(item)
        sealed = AuditEvent(**{**item.__dict__, "response_sha256": _sha256(body)})
        for name, value in poison.items() if item is bad else ():
            object.__setattr__(sealed, name, value)
        return (await log.append_with_evidence(sealed, body)).record

    outcomes = await asyncio.gather(
        *(one(i, e) for i, e in enumerate(events)), return_exceptions=True
    )

    assert isinstance(outcomes[5], AuditUnavailable)
    stored = [o for i, o in enumerate(outcomes) if i != 5]
    assert all(isinstance(o, AuditRecord) for o in stored)
    assert sorted(o.seq for o in stored) == list(range(1, 12))  # type: ignore[union-attr]
    assert log.stats.records == 11
    assert (await log.verify()).ok
    again = await log.append(event(99))  # and the writer goes on
    assert again.seq == 12


def _sha256(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


# -- X-Forwarded-For: trusted only from HUB_TRUSTED_PROXIES, against a real `hub serve` ---------

FORWARDED = {
    "203.0.113.7": "203.0.113.7",
    "2001:db8::1": "2001:db8::1",
    "not-an-address": None,
    "9" * 3000: None,
    "203.0.113.9\u00ff": None,
}


@pytest.mark.parametrize("trusted", [None, '["127.0.0.1"]'], ids=["default", "loopback-trusted"])
async def test_forwarded_for_is_believed_only_from_a_trusted_proxy(
    simulators: Simulators, database_url: str, tmp_path: Path, trusted: str | None
) -> None:
    """`hub serve` as an operator starts it: by default X-Forwarded-For from 127.0.0.1 is
    ignored; with 127.0.0.1 trusted, only a valid IP address from it is recorded. Hostile
    values sent alongside another client's permit queries cost those nothing."""
    prefix = f"test:{uuid.uuid4().hex[:12]}:"
    settings = hub_settings(simulators, database_url, tmp_path, prefix)
    async with admin_services(settings) as admin:  # migrated and seeded before it starts
        seeded = await seed_demo_clients(admin.auth)
    secret = next(str(c["client_secret"]) for c in seeded if c["client_id"] == VICTIM)
    env = _serve_env(simulators, database_url, tmp_path, settings, prefix)
    env.pop("HUB_TRUSTED_PROXIES", None)
    env.pop("FORWARDED_ALLOW_IPS", None)  # uvicorn's own variable must not matter
    if trusted is not None:
        env["HUB_TRUSTED_PROXIES"] = trusted
    port = _free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hub", "serve", "--port", str(port), "--no-access-log",
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    traces: dict[str, str | None] = {}

    async def forwarded(sent: str, expected: str | None) -> int:
        trace_id = uuid.uuid4().hex
        traces[trace_id] = expected if trusted else "127.0.0.1"
        response = await client.post(
            url + "/graphql",
            json={"query": "{ __typename }"},
            headers={
                b"x-forwarded-for": sent.encode("latin-1"),
                b"traceparent": f"00-{trace_id}-{'1' * 16}-01".encode(),
            },
        )
        return response.status_code

    async def victim(number: str, token: str) -> int:
        response = await client.post(
            url + "/graphql",
            json={"query": PERMIT, "variables": {"n": number}},
            headers={"authorization": f"Bearer {token}", "x-purpose-of-use": _purpose(VICTIM)},
        )
        return response.status_code

    try:
        await _wait_healthy(url, process)
        async with httpx.AsyncClient(timeout=30) as client:
            token = (
                await client.post(
                    url + "/oauth/token", data={"grant_type": "client_credentials"},
                    auth=(VICTIM, secret),
                )
            ).json()["access_token"]
            attacks, victims = await asyncio.gather(
                asyncio.gather(*(forwarded(*pair) for pair in FORWARDED.items() for _ in "123")),
                asyncio.gather(
                    *(victim(n, token) for n in sorted(simulators.dataset.permits)[:30])
                ),
            )
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), timeout=20)
        await _drop_prefix(prefix)
    assert set(attacks) == {401}
    assert victims == [200] * 30
    async with admin_services(settings) as admin:
        for trace_id, expected in traces.items():
            page = await admin.audit.search(
                AuditFilter(trace_id=trace_id), 5, None, subject_view=False,
                today=dt.date.today(),
            )
            [record] = page.records
            assert record.client_address == expected, trace_id
        assert (await admin.audit.verify()).ok


async def test_an_auditor_searching_for_a_nul_finds_nothing_rather_than_an_error(
    hub: HubClient,
) -> None:
    """No record can hold a NUL, so a filter naming one matches nothing (PostgreSQL would
    refuse the query)."""
    query = """query($f: AccessLogFilter) { accessLog(filter: $f) { edges { node { id } } } }"""
    for where in ({"operation": "\u0000"}, {"clientId": "x\u0000"}, {"traceId": "\u0000"}):
        response = await hub.graphql("auditor-hubei", query, {"f": where})
        assert response.status_code == 200, response.text
        assert response.json().get("data") is not None, response.text
        assert response.json()["data"]["accessLog"]["edges"] == []
