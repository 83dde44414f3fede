"""Issue 18: card writes in the client's jurisdiction, and one live card of a kind per person.

These tests run their own source systems, on a dataset with planted data the generator never
makes: people enrolled twice (their permit's Wuhan enrollment and a second one at Yichang, as
`make run`'s demo showed), one of them already carded twice (for `hub check duplicates`), one
with a live card under the first SSN only, and a Beijing card (outside the card center's
jurisdiction ["42"]). Everything goes through the GraphQL API of real hubs with real tokens.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.card_lifecycle import is_live
from connectors.identifiers import make_ssn
from connectors.records import (
    Card,
    CardChannel,
    CardKind,
    CardStatus,
    CardStatusChange,
    EnrollmentStatus,
    Permit,
)
from hub.admin import admin_services
from hub.demo_clients import DEMO_AGENCIES, seed_demo_clients
from simulators import Dataset, build_cards_app, build_wms_app, generate, seed_agency_databases
from tests.conftest import AGENCY_REGIONS, HubClient, Simulators, SqlCounter, open_hub
from tests.hub.test_two_instances import _free_port, _serve_env, _wait_healthy
from tests.services import POSTGRES_URL, REDIS_URL, fresh_database, private_redis
from tests.simulators.servers import serve

CENTER = "ssc-card-center-hubei"  # jurisdiction ["42"]
AUDITOR = "auditor-hubei"
APPLY = """mutation($i: CardApplicationInput!) {
  applyForCard(input: $i) { created card { cardNumber ssn kind status region { code } } } }"""
APPLY_BATCH = """mutation($i: BatchCardApplicationInput!) {
  applyForCards(input: $i) { total created failed
    results { index ssn created card { cardNumber }
              error { code reason message existingCard { cardNumber kind region } } } } }"""
UPDATE = """mutation($i: UpdateCardStatusInput!) {
  updateCardStatus(input: $i) { card { cardNumber status } } }"""
FIND = "query($s: ID!) { accessLog(filter: {subject: $s}) { edges { node { outcome subjects } } } }"
MASKED = re.compile(r"^E?H\*+[0-9]{4}$")
BEIJING = "110000"
BEIJING_SSN = make_ssn(BEIJING, 4_242_424)
TODAY = dt.date.today()


# --- the planted source systems -------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Twin:
    """One person enrolled twice: the dataset's Wuhan SSN and a planted Yichang one."""

    permit: Permit
    wuhan: str
    yichang: str

    def application(self, ssn: str, kind: str = "PHYSICAL") -> dict[str, Any]:
        return {
            **self.item(ssn), "kind": kind,
            "channel": "ONLINE" if kind == "ELECTRONIC" else "IN_PERSON",
            "idempotencyKey": _key(),
        }

    def item(self, ssn: str) -> dict[str, Any]:
        holder = self.permit.holder
        return {"ssn": ssn, "name": holder.name, "nationality": holder.nationality,
                "passportNumber": holder.passport_number}


@dataclasses.dataclass(frozen=True)
class Planted:
    simulators: Simulators
    twins: list[Twin]  # no card under either SSN; one per test
    carded: Twin  # a live PHYSICAL card under the Wuhan SSN, in the card system only
    duplicated: Twin  # a live PHYSICAL card under each SSN: what `hub check duplicates` finds
    beijing_card: Card


def _key() -> str:
    return f"live-{uuid.uuid4().hex}"


def _card(number: str, ssn: str, region: str) -> Card:
    at = dt.datetime.combine(TODAY - dt.timedelta(days=30), dt.time(9), dt.UTC)
    steps = [CardStatus.APPLIED, CardStatus.IN_PRODUCTION, CardStatus.ISSUED, CardStatus.ACTIVE]
    history = tuple(CardStatusChange(s, at + dt.timedelta(days=i)) for i, s in enumerate(steps))
    return Card(number, ssn, CardKind.PHYSICAL, CardStatus.ACTIVE, history[2].at.date(), region,
                CardChannel.IN_PERSON, history)


def _plant(dataset: Dataset) -> tuple[Dataset, list[Twin], Card]:
    """Second enrollments at Yichang for uncarded Wuhan holders, and the planted cards."""
    enrollments, cards = dict(dataset.enrollments), dict(dataset.cards)
    candidates = [
        e for e in sorted(dataset.enrollments.values(), key=lambda e: e.ssn)
        if e.region == "420100" and e.status is EnrollmentStatus.ACTIVE
        and not dataset.cards.get(e.ssn) and dataset.permits[e.permit_number].is_valid_on(TODAY)
        and e.permit_number not in dataset.samples.values()
    ]
    twins = []
    for index, enrollment in enumerate(candidates[:16]):
        second = make_ssn("420500", 90_000_000 + index)
        enrollments[second] = dataclasses.replace(enrollment, ssn=second, region="420500")
        twins.append(Twin(dataset.permits[enrollment.permit_number], enrollment.ssn, second))
    carded, duplicated = twins[-2], twins[-1]
    cards[carded.wuhan] = (_card("H90000001", carded.wuhan, "420100"),)
    cards[duplicated.wuhan] = (_card("H90000002", duplicated.wuhan, "420100"),)
    cards[duplicated.yichang] = (_card("H90000003", duplicated.yichang, "420500"),)
    beijing = _card("H90000004", BEIJING_SSN, BEIJING)
    cards[BEIJING_SSN] = (beijing,)
    planted = dataclasses.replace(dataset, enrollments=enrollments, cards=cards)
    return planted, twins, beijing


@pytest.fixture(scope="module")
async def planted(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Planted]:
    dataset, twins, beijing = _plant(generate(seed=1818, foreigners=600, today=TODAY))
    tmp = tmp_path_factory.mktemp("planted")
    async with AsyncExitStack() as stack:
        wms_url = await stack.enter_async_context(serve(build_wms_app(dataset)))
        cards_url = await stack.enter_async_context(serve(build_cards_app(dataset)))
        urls = {
            region: await stack.enter_async_context(fresh_database(tmp, f"agency{region}"))
            for region in AGENCY_REGIONS
        }
        await seed_agency_databases(dataset, urls)
        simulators = Simulators(dataset, wms_url, cards_url, urls)
        yield Planted(simulators, twins[:-2], twins[-2], twins[-1], beijing)


_taken: set[int] = set()


def _twin(planted: Planted, index: int) -> Twin:
    """Each test its own person (the module's card system is shared)."""
    assert index not in _taken
    _taken.add(index)
    return planted.twins[index]


@pytest.fixture
async def hub(planted: Planted, database_url: str, tmp_path: Path) -> AsyncIterator[HubClient]:
    async with open_hub(planted.simulators, database_url, tmp_path) as client:
        yield client


# --- calling --------------------------------------------------------------------------------


async def _call(
    hub: HubClient, query: str, given: dict[str, Any], client: str = CENTER
) -> dict[str, Any]:
    purpose = "card-service" if query is UPDATE else "card-issuance"
    response = await hub.graphql(client, query, {"i": given}, purpose=purpose)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _error(body: dict[str, Any]) -> dict[str, Any]:
    assert body.get("data") is None, body
    (error,) = body["errors"]
    extensions: dict[str, Any] = error["extensions"]
    return extensions | {"message": error["message"]}


async def _cards_of(planted: Planted, *ssns: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient() as client:
        response = await client.post(planted.simulators.cards_url + "/cards:batch",
                                     json={"ssns": list(ssns)})
    return [c for ssn in ssns for c in response.json()["cards"][ssn]]


def _live_physical(cards: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [c for c in cards if c["kind"] == "PHYSICAL" and is_live(CardStatus(c["status"]))]


async def _wuhan_desk(hub: HubClient) -> str:
    """A card desk serving Wuhan only (["420100"]): Yichang SSNs are outside its jurisdiction,
    though an agency of the hub serves them (an SSN no agency serves is refused at admission,
    as any malformed identifier)."""
    client = "card-desk-wuhan"
    center = next(a for a in DEMO_AGENCIES if a.client_id == CENTER)
    _, secret = await hub.hub.auth.add_client(
        client, "Wuhan card desk", sorted(center.scopes), sorted(center.purposes),
        jurisdiction=("420100",),
    )
    assert secret is not None
    hub.secrets[client] = secret
    return client


async def _last_record(hub: HubClient) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    from observability.audit import AuditFilter

    page = await hub.hub.audit.search(AuditFilter(), 50, None, subject_view=False, today=TODAY)
    record = next(r for r in page.records if r.kind == "graphql")
    return record.outcome, tuple(record.error_codes), tuple(record.subjects)


async def _found_by(hub: HubClient, subject: str) -> list[dict[str, Any]]:
    response = await hub.graphql(AUDITOR, FIND, {"s": subject})
    assert response.status_code == 200, response.text
    return [e["node"] for e in response.json()["data"]["accessLog"]["edges"]]


# --- one live card of a kind per person -----------------------------------------------------


async def test_a_person_enrolled_twice_gets_one_live_physical_card(
    hub: HubClient, planted: Planted
) -> None:
    """The issue's case: a card under the Wuhan SSN, then one under the Yichang SSN."""
    twin = _twin(planted, 0)
    first = twin.application(twin.wuhan)
    made = await _call(hub, APPLY, first)
    assert made["data"]["applyForCard"]["created"] is True, made
    number = made["data"]["applyForCard"]["card"]["cardNumber"]

    second = await _call(hub, APPLY, twin.application(twin.yichang))
    error = _error(second)
    assert error["code"] == "CONFLICT"
    existing = error["existingCard"]
    assert existing == {"cardNumber": existing["cardNumber"], "kind": "PHYSICAL",
                        "region": "420100"}
    assert MASKED.match(existing["cardNumber"]) and existing["cardNumber"][-4:] == number[-4:]
    assert number not in str(second)  # the full card number is never told
    assert _live_physical(await _cards_of(planted, twin.wuhan, twin.yichang)) == [
        c for c in await _cards_of(planted, twin.wuhan) if c["cardNumber"] == number
    ]

    # A retry of the first application is not a second card, nor a conflict.
    again = await _call(hub, APPLY, first)
    assert again["data"]["applyForCard"] == made["data"]["applyForCard"] | {"created": False}
    # The other kind is another card: an electronic card under the Yichang SSN is fine.
    electronic = await _call(hub, APPLY, twin.application(twin.yichang, "ELECTRONIC"))
    assert electronic["data"]["applyForCard"]["created"] is True, electronic

    # Once the first card is cancelled, the person may have a physical card again.
    cancelled = await _call(hub, UPDATE, {"cardNumber": number, "status": "CANCELLED"})
    assert cancelled["data"]["updateCardStatus"]["card"]["status"] == "CANCELLED"
    replacement = await _call(hub, APPLY, twin.application(twin.yichang))
    assert replacement["data"]["applyForCard"]["created"] is True, replacement
    assert len(_live_physical(await _cards_of(planted, twin.wuhan, twin.yichang))) == 1


async def test_a_live_card_already_in_the_card_system_blocks_one_under_another_ssn(
    hub: HubClient, planted: Planted
) -> None:
    """The register starts empty: the holder's cards under every SSN are looked at."""
    twin = planted.carded
    for _ in range(2):  # the second time the register itself knows the card
        error = _error(await _call(hub, APPLY, twin.application(twin.yichang)))
        assert error["code"] == "CONFLICT"
        assert error["existingCard"] == {"cardNumber": "H****0001", "kind": "PHYSICAL",
                                         "region": "420100"}
    assert await _cards_of(planted, twin.yichang) == []


async def test_concurrent_applications_for_one_person_make_one_live_card(
    hub: HubClient, planted: Planted
) -> None:
    """N applications at once, for both SSNs of one person, to one hub: one card."""
    twin = _twin(planted, 1)
    applications = [twin.application(ssn) for ssn in (twin.wuhan, twin.yichang) * 6]
    bodies = await asyncio.gather(*(_call(hub, APPLY, a) for a in applications))
    made = [b for b in bodies if b.get("data") and b["data"]["applyForCard"]["created"]]
    refused = [_error(b)["code"] for b in bodies if "errors" in b]
    assert len(made) == 1, bodies
    assert refused == ["CONFLICT"] * (len(applications) - 1)
    assert len(_live_physical(await _cards_of(planted, twin.wuhan, twin.yichang))) == 1


@pytest.mark.skipif(POSTGRES_URL is None, reason="two hub instances share a PostgreSQL database")
async def test_two_hub_instances_racing_for_one_person_make_one_live_card(
    planted: Planted, database_url: str, tmp_path: Path
) -> None:
    twins = [_twin(planted, 2), _twin(planted, 3)]
    simulators = planted.simulators
    prefix = f"test:{uuid.uuid4().hex[:12]}:"
    from tests.conftest import hub_settings

    settings = hub_settings(simulators, database_url, tmp_path, prefix)
    async with AsyncExitStack() as stack:
        redis_url = REDIS_URL or await stack.enter_async_context(private_redis())
        settings = settings.model_copy(update={"redis_url": redis_url})
        async with admin_services(settings) as admin:  # migrated and seeded once, before both
            secrets = {str(c["client_id"]): str(c["client_secret"])
                       for c in await seed_demo_clients(admin.auth)}
        env = _serve_env(simulators, database_url, tmp_path, settings, prefix)
        urls = await _start_two(stack, env)
        async with httpx.AsyncClient(timeout=60) as client:
            token = (await client.post(
                urls[0] + "/oauth/token", data={"grant_type": "client_credentials"},
                auth=(CENTER, secrets[CENTER]),
            )).json()["access_token"]
            headers = {"authorization": f"Bearer {token}", "x-purpose-of-use": "card-issuance"}
            sent = [
                (url, twin.application(ssn))
                for twin in twins
                for url in urls
                for ssn in (twin.wuhan, twin.yichang) * 4
            ]
            responses = await asyncio.gather(*(
                client.post(url + "/graphql", json={"query": APPLY, "variables": {"i": a}},
                            headers=headers)
                for url, a in sent
            ))
    bodies = [r.json() for r in responses]
    assert all(r.status_code == 200 for r in responses), bodies
    for twin in twins:
        mine = [b for (_, a), b in zip(sent, bodies, strict=True)
                if a["ssn"] in (twin.wuhan, twin.yichang)]
        made = [b for b in mine if b.get("data") and b["data"]["applyForCard"]["created"]]
        assert len(made) == 1, mine
        assert {_error(b)["code"] for b in mine if "errors" in b} == {"CONFLICT"}
        assert len(_live_physical(await _cards_of(planted, twin.wuhan, twin.yichang))) == 1


async def _start_two(stack: AsyncExitStack, env: dict[str, str]) -> list[str]:
    urls = []
    for _ in range(2):
        port = _free_port()
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "hub", "serve", "--port", str(port), "--no-access-log",
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        stack.push_async_callback(_stop, process)
        urls.append(f"http://127.0.0.1:{port}")
        await _wait_healthy(urls[-1], process)
    return urls


async def _stop(process: asyncio.subprocess.Process) -> None:
    process.terminate()
    await asyncio.wait_for(process.wait(), timeout=20)


# --- jurisdiction ---------------------------------------------------------------------------


async def test_an_application_outside_the_jurisdiction_is_refused_before_any_call(
    hub: HubClient, planted: Planted
) -> None:
    twin = _twin(planted, 4)
    desk = await _wuhan_desk(hub)
    await hub.token(desk)
    sql = SqlCounter(hub.hub)
    before = await planted.simulators.upstream_calls()
    error = _error(await _call(hub, APPLY, twin.application(twin.yichang), desk))
    assert (error["code"], error["reason"]) == ("FORBIDDEN", "OUT_OF_JURISDICTION")
    assert await planted.simulators.upstream_calls() == before  # no WMS, no card system
    assert sql.counts == {}  # no agency database either
    assert await _cards_of(planted, twin.yichang) == []
    outcome, codes, subjects = await _last_record(hub)
    assert (outcome, codes) == ("DENIED", ("FORBIDDEN",))
    assert twin.yichang in subjects
    assert "DENIED" in [n["outcome"] for n in await _found_by(hub, twin.yichang)]

    # Inside its jurisdiction the same desk applies as the card center would.
    made = await _call(hub, APPLY, twin.application(twin.wuhan), desk)
    assert made["data"]["applyForCard"]["created"] is True, made


async def test_a_status_change_of_a_card_outside_the_jurisdiction_is_refused_after_the_read(
    hub: HubClient, planted: Planted
) -> None:
    card = planted.beijing_card
    before = (await planted.simulators.stats(planted.simulators.cards_url))["requests"]
    error = _error(await _call(hub, UPDATE, {"cardNumber": card.card_number,
                                             "status": "SUSPENDED"}))
    assert (error["code"], error["reason"]) == ("FORBIDDEN", "OUT_OF_JURISDICTION")
    after = (await planted.simulators.stats(planted.simulators.cards_url))["requests"]
    changed = {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}
    assert changed == {"GET /cards/{number}": 1}  # the read that tells the region; no write
    (still,) = await _cards_of(planted, BEIJING_SSN)
    assert still["status"] == "ACTIVE"
    outcome, codes, subjects = await _last_record(hub)
    assert (outcome, codes) == ("DENIED", ("FORBIDDEN",))
    assert card.card_number in subjects
    assert "DENIED" in [n["outcome"] for n in await _found_by(hub, card.card_number)]


async def test_a_batch_refuses_its_items_outside_the_jurisdiction_and_makes_the_rest(
    hub: HubClient, planted: Planted
) -> None:
    twin = _twin(planted, 5)
    items = [twin.item(twin.wuhan), twin.item(BEIJING_SSN), twin.item("not-an-ssn")]
    given = {"employerCreditCode": twin.permit.employer.credit_code,
             "idempotencyKey": _key(), "items": items}
    body = await _call(hub, APPLY_BATCH, given)
    assert "errors" not in body, body
    results = body["data"]["applyForCards"]["results"]
    assert results[0]["created"] and results[0]["error"] is None
    assert (results[1]["error"]["code"], results[1]["error"]["reason"]) == (
        "FORBIDDEN", "OUT_OF_JURISDICTION")
    assert results[1]["card"] is None
    assert results[2]["error"]["code"] == "BAD_USER_INPUT"
    outcome, codes, subjects = await _last_record(hub)
    assert (outcome, codes) == ("PARTIAL", ("BAD_USER_INPUT", "FORBIDDEN"))
    assert {twin.wuhan, BEIJING_SSN} <= set(subjects)
    assert "PARTIAL" in [n["outcome"] for n in await _found_by(hub, BEIJING_SSN)]

    # A batch of refused items only: no call at all, and the record is DENIED.
    before = await planted.simulators.upstream_calls()
    only = {**given, "idempotencyKey": _key(), "items": [twin.item(BEIJING_SSN)]}
    body = await _call(hub, APPLY_BATCH, only)
    assert body["data"]["applyForCards"]["failed"] == 1
    assert await planted.simulators.upstream_calls() == before
    assert (await _last_record(hub))[:2] == ("DENIED", ("FORBIDDEN",))


async def test_a_batch_with_both_ssns_of_one_person_makes_one_card(
    hub: HubClient, planted: Planted
) -> None:
    twin = _twin(planted, 6)
    given = {"employerCreditCode": twin.permit.employer.credit_code, "idempotencyKey": _key(),
             "items": [twin.item(twin.wuhan), twin.item(twin.yichang)]}
    results = (await _call(hub, APPLY_BATCH, given))["data"]["applyForCards"]["results"]
    assert results[0]["created"] and results[0]["error"] is None
    error = results[1]["error"]
    assert error["code"] == "CONFLICT"
    number = results[0]["card"]["cardNumber"]
    assert error["existingCard"] == {"cardNumber": error["existingCard"]["cardNumber"],
                                     "kind": "PHYSICAL", "region": "420100"}
    assert error["existingCard"]["cardNumber"][-4:] == number[-4:]


# --- data that already breaks the rule ------------------------------------------------------


async def test_hub_check_duplicates_reports_the_planted_person_only(
    planted: Planted, database_url: str, tmp_path: Path
) -> None:
    simulators = planted.simulators
    env = {
        **os.environ,
        "HUB_DATABASE_URL": database_url,
        "HUB_WMS_URL": simulators.wms_url,
        "HUB_CARDS_URL": simulators.cards_url,
        "HUB_AGENCY_DATABASES": json.dumps(simulators.agency_urls),
        "HUB_DATA_DIR": str(tmp_path),
    }
    env.pop("HUB_REDIS_URL", None)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hub", "check", "duplicates", env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    lines = [line for line in out.decode().splitlines() if line.startswith("cards: ")]
    assert process.returncode == 1, (out, err)
    holder = planted.duplicated.permit.holder.id
    assert lines == [
        f"cards: person {holder}: H****0002 (PHYSICAL, region 420100, ACTIVE), "
        "H****0003 (PHYSICAL, region 420500, ACTIVE)"
    ]
    assert "H90000002" not in out.decode()  # masked

