"""Issue 18, item 2: each agency reads the bound fields of the rows of its jurisdiction only.

Over real HTTP, a real hub and the simulated source systems: every demo client asks for every
bound read field of a row inside and of a row outside its jurisdiction. Inside: the data.
Outside: the row is null at its path with FORBIDDEN / OUT_OF_JURISDICTION, the rest of the
answer stands, and where the identifier told the region no source system was asked anything.
Then the rows only the record places (a foreigner's permits and enrollments, an enrollment's
permit), the compiled plan against graphql-core, and the audit record of a refusal.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, insert
from sqlalchemy.ext.asyncio import create_async_engine

from connectors.agency_tables import enrollments
from connectors.identifiers import make_ssn
from hub.demo_clients import DEMO_AGENCIES, DemoAgency
from infra.regions import covers, region_of_permit
from schema.fields import INHERIT
from schema.policy import FIELD_SCOPES
from tests.conftest import HubClient, Simulators, SqlCounter, open_hub
from tests.hub.rows import EnrolledRow, enrolled_row
from tests.services import fresh_database

REASON = "OUT_OF_JURISDICTION"


@pytest.fixture(scope="module")
async def hub(
    simulators: Simulators, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[HubClient]:
    """One hub for the module (its requests are independent reads)."""
    tmp = tmp_path_factory.mktemp("rows")
    async with fresh_database(tmp) as url, open_hub(simulators, url, tmp) as client:
        yield client


@dataclass(frozen=True)
class Case:
    """A document reaching one bound field; `row`: which identifier names its row."""

    field: str  # "Type.field"
    query: str
    row: str  # "permit" or "ssn"
    path: tuple[str, ...]  # where the refused row is null
    identifier: bool = True  # refused from the identifier, before any source-system call


def _permit(field: str, selection: str) -> Case:
    query = "query($n: ID!) { permit(number: $n) { number " + selection + " } }"
    return Case(f"WorkPermit.{field}", query, "permit", ("permit",))


def _link(field: str, selection: str) -> Case:
    """A permit's link to rows of their own: the permit is national (it is read), the link
    refused by the agency it is read at (no agency or card system call)."""
    query = "query($n: ID!) { permit(number: $n) { number isValid " + selection + " } }"
    return Case(f"WorkPermit.{field}", query, "permit", ("permit", field), identifier=False)


def _foreigner(field: str, selection: str, by: str = "permitNumber") -> Case:
    variable = "$n" if by == "permitNumber" else "$s"
    query = (f"query({variable}: ID!) {{ foreigner({by}: {variable}) {{ {selection} }} }}")
    return Case(f"Foreigner.{field}", query, "permit" if by == "permitNumber" else "ssn",
                ("foreigner",))


def _enrollment(field: str, selection: str) -> Case:
    query = "query($s: ID!) { enrollment(ssn: $s) { " + selection + " } }"
    return Case(f"Enrollment.{field}", query, "ssn", ("enrollment",))


def _card(field: str, selection: str) -> Case:
    query = "query($s: ID!) { cards(ssn: $s) { " + selection + " } }"
    return Case(f"SocialSecurityCard.{field}", query, "ssn", ("cards",))


CASES = (
    _permit("holder", "holder { name }"),
    _permit("employer", "employer { name }"),
    _permit("category", "category"),
    _permit("position", "position"),
    _permit("workLocation", "workLocation { code }"),
    _permit("notificationLetterNumber", "notificationLetterNumber"),
    _permit("history", "history { kind }"),
    _link("enrollment", "enrollment { status }"),
    _link("cards", "cards { status }"),
    _foreigner("id", "id"),
    _foreigner("name", "name"),
    _foreigner("nationality", "nationality"),
    _foreigner("passportNumber", "passportNumber"),
    _foreigner("dateOfBirth", "dateOfBirth"),
    _foreigner("gender", "gender"),
    _foreigner("enrollments", "enrollments { status }"),
    _foreigner("name", "name", by="ssn"),
    _enrollment("ssn", "ssn"),
    _enrollment("permitNumber", "permitNumber"),
    _enrollment("region", "region { code }"),
    _enrollment("status", "status"),
    _enrollment("enrolledOn", "enrolledOn"),
    _enrollment("employerCreditCode", "employerCreditCode"),
    _enrollment("permit", "permit { number }"),
    _enrollment("cards", "cards { status }"),
    _card("kind", "kind"),
    _card("status", "status"),
    _card("issuedOn", "issuedOn"),
    _card("region", "region { code }"),
    _card("cardNumber", "cardNumber"),
    _card("ssn", "ssn"),
    _card("channel", "channel"),
    _card("history", "history { status }"),
)


def test_the_matrix_covers_every_bound_read_field() -> None:
    from schema.fields import FIELDS

    bound = {
        key for key, f in FIELDS.items()
        if f.binding == "region-of-row" and not key.startswith(("Mutation.", "Employer."))
    }
    reached = {case.field for case in CASES} | {"Query.foreigner", "Query.enrollment",
                                                "Query.cards"}
    # A person's own roots, bound to the person: tests/hub/test_self_rows.py and
    # test_people_random.py.
    reached |= {"Query.me", "Query.myAccessLog", "Query.myPermitQr"}
    # Employer's fields are read through WorkPermit.employer (the permit's row).
    assert bound <= reached, sorted(bound - reached)


def _needed(hub: HubClient, query: str) -> set[str]:
    prepared = hub.hub.graphql.prepare(query)
    assert not prepared.errors, prepared.errors
    scopes = {FIELD_SCOPES[tuple(f.split("."))] for f in prepared.fields}  # type: ignore[index]
    return scopes - {INHERIT}


def _outside_permit(simulators: Simulators, agency: DemoAgency) -> str | None:
    """A VALID permit outside the agency's jurisdiction, enrolled if there is one."""
    row = enrolled_row(simulators.dataset, agency.jurisdiction, inside=False)
    if row is not None:
        return row.permit
    beijing = simulators.dataset.samples["beijing_permit"]
    return None if covers(agency.jurisdiction, region_of_permit(beijing)) else beijing


async def _calls(simulators: Simulators, sql: SqlCounter) -> tuple[int, int, int]:
    """Calls so far to the WMS, to the card system, and statements to the agencies."""
    wms = (await simulators.stats(simulators.wms_url))["total"]
    cards = (await simulators.stats(simulators.cards_url))["total"]
    return wms, cards, sum(sql.counts.values())


def _at(data: Any, path: tuple[str, ...]) -> Any:
    for step in path:
        data = data[step] if data is not None else None
    return data


@pytest.mark.parametrize("agency", DEMO_AGENCIES, ids=lambda a: a.client_id)
async def test_every_client_reads_bound_fields_of_its_rows_only(
    hub: HubClient, simulators: Simulators, agency: DemoAgency
) -> None:
    inside = enrolled_row(simulators.dataset, agency.jurisdiction, inside=True)
    outside = enrolled_row(simulators.dataset, agency.jurisdiction, inside=False)
    outside_permit = _outside_permit(simulators, agency)
    assert inside is not None
    sql = SqlCounter(hub.hub)
    mismatches: list[tuple[str, str, str]] = []
    refused_cells = 0

    async def ask(case: Case, permit: str | None, ssn: str | None) -> Any:
        variables = {"n": permit} if case.row == "permit" else {"s": ssn}
        if "$n" in case.query and "$s" in case.query:
            variables = {"n": permit, "s": ssn}
        return await hub.graphql(agency.client_id, case.query, variables)

    for case in CASES:
        allowed = _needed(hub, case.query) <= agency.scopes
        # Inside: the data, or the scope policy's refusal for a client without the scope.
        response = await ask(case, inside.permit, inside.ssn)
        body = response.json()
        if not allowed:
            if response.status_code != 403 or "data" in body:
                mismatches.append((case.field, "policy", response.text[:200]))
            continue
        if response.status_code != 200 or "errors" in body or _at(body["data"], case.path) in (
            None, []
        ):
            mismatches.append((case.field, "inside", response.text[:200]))
        # Outside: null at the row's path, FORBIDDEN with its reason, and no upstream call
        # when the identifier told.
        permit = outside_permit if case.row == "permit" else None
        ssn = outside.ssn if outside is not None and case.row == "ssn" else None
        if (case.row == "permit" and permit is None) or (case.row == "ssn" and ssn is None):
            continue  # no such row outside this jurisdiction (national, or Hubei for SSNs)
        if not case.identifier and outside is None:
            continue  # a link needs an enrolled permit outside
        refused_cells += 1
        before = await _calls(simulators, sql)
        response = await ask(case, permit, ssn)
        after = await _calls(simulators, sql)
        body = response.json()
        errors = body.get("errors", [])
        if (
            response.status_code != 200
            or _at(body["data"], case.path) is not None
            or not errors
            or any(e["extensions"].get("reason") != REASON for e in errors)
            or any(e["extensions"]["code"] != "FORBIDDEN" for e in errors)
            or tuple(errors[0]["path"][: len(case.path)]) != case.path
        ):
            mismatches.append((case.field, "outside", response.text[:300]))
        elif case.identifier and after != before:
            mismatches.append((case.field, "upstream calls", f"{before} -> {after}"))
        elif after[1:] != before[1:]:  # a link: the permit is read (national), nothing else
            mismatches.append((case.field, "agency or card calls", f"{before} -> {after}"))
        elif not case.identifier and _at(body["data"], ("permit", "number")) != permit:
            mismatches.append((case.field, "rest of the answer", response.text[:300]))
    assert mismatches == []
    if agency.jurisdiction != ("*",) and agency.scopes & {"permit:holder", "card:status"}:
        assert refused_cells, "a regional client with bound scopes met rows outside"


# ---- a permit checked nationally, bound fields regionally, in one batch


async def test_a_batch_refuses_only_the_outside_items_and_validity_stays_national(
    hub: HubClient, simulators: Simulators
) -> None:
    dataset = simulators.dataset
    wuhan = enrolled_row(dataset, ("420100",), inside=True)
    yichang = enrolled_row(dataset, ("420500",), inside=True)
    assert wuhan is not None and yichang is not None
    numbers = [yichang.permit, wuhan.permit, dataset.samples["beijing_permit"]]

    validity = await hub.graphql(
        "exit-entry-wuhan", "query($n: [ID!]!) { permits(numbers: $n) { number isValid } }",
        {"n": numbers},
    )
    assert validity.status_code == 200 and "errors" not in validity.json()
    assert [p["number"] for p in validity.json()["data"]["permits"]] == numbers

    calls = await simulators.upstream_calls()
    held = await hub.graphql(
        "exit-entry-wuhan",
        "query($n: [ID!]!) { permits(numbers: $n) { number holder { name } } }",
        {"n": numbers},
    )
    body = held.json()
    permits = body["data"]["permits"]
    assert permits[0] is None and permits[2] is None
    assert permits[1]["number"] == wuhan.permit and permits[1]["holder"]["name"]
    assert [e["path"] for e in body["errors"]] == [["permits", 0], ["permits", 2]]
    assert {e["extensions"]["reason"] for e in body["errors"]} == {REASON}
    assert await simulators.upstream_calls() == calls  # all three were read by the first ask


# ---- rows only the record places


@dataclass(frozen=True)
class CrossRegion:
    """Rows written into the agency simulators for this module (and removed after it): a
    Wuhan-enrolled holder's older Yichang permit with a terminated Yichang enrollment, and a
    terminated Wuhan enrollment of a Yichang permit (the issue's double enrollment)."""

    holder_permit: str  # the holder's current, Wuhan-enrolled permit
    holder_ssn: str
    older_permit: str  # the same holder's Yichang permit
    older_ssn: str  # its Yichang enrollment
    foreign_ssn: str  # a Wuhan SSN enrolling a Yichang permit
    foreign_permit: str


def _holder_with_yichang_past(simulators: Simulators) -> tuple[EnrolledRow, str]:
    dataset = simulators.dataset
    for enrollment in sorted(dataset.enrollments.values(), key=lambda e: e.ssn):
        permit = dataset.permits[enrollment.permit_number]
        if enrollment.region != "420100" or not permit.is_valid_on(dataset.today):
            continue
        older = [
            n for n in dataset.permits_by_holder[permit.holder.id]
            if n != permit.number and n.startswith("420500")
        ]
        if older:
            return EnrolledRow(permit.number, enrollment.ssn, permit.holder.id), older[0]
    raise AssertionError("the synthetic data has a Wuhan holder with an older Yichang permit")


@pytest.fixture(scope="module")
async def cross_region(simulators: Simulators) -> AsyncIterator[CrossRegion]:
    dataset = simulators.dataset
    row, older = _holder_with_yichang_past(simulators)
    yichang = enrolled_row(dataset, ("420500",), inside=True)
    assert yichang is not None
    rows = CrossRegion(
        row.permit, row.ssn, older, make_ssn("420500", 99_000_000_001),
        make_ssn("420100", 99_000_000_002), yichang.permit,
    )
    holder = dataset.permits[row.permit].holder
    other = dataset.permits[yichang.permit]

    def enrollment(ssn: str, permit: str, person: Any, region: str) -> dict[str, Any]:
        return {
            "ssn": ssn, "permit_number": permit, "person_id": person.id, "region": region,
            "status": "TERMINATED", "enrolled_on": dataset.today - dt.timedelta(days=400),
            "name": person.name, "nationality": person.nationality,
            "employer_credit_code": dataset.permits[permit].employer.credit_code,
            "created_at": dt.datetime.now(dt.UTC),
        }

    written = {
        "420500": enrollment(rows.older_ssn, older, holder, "420500"),
        "420100": enrollment(rows.foreign_ssn, rows.foreign_permit, other.holder, "420100"),
    }
    engines = {r: create_async_engine(simulators.agency_urls[r]) for r in written}
    try:
        for region, values in written.items():
            async with engines[region].begin() as conn:
                await conn.execute(insert(enrollments).values(**values))
        yield rows
    finally:
        for region, values in written.items():
            async with engines[region].begin() as conn:
                await conn.execute(delete(enrollments).where(enrollments.c.ssn == values["ssn"]))
            await engines[region].dispose()


async def test_a_foreigners_permits_and_enrollments_are_refused_row_by_row(
    hub: HubClient, cross_region: CrossRegion
) -> None:
    rows = cross_region
    query = """query($n: ID!) { foreigner(permitNumber: $n) {
                 name permits { number isValid employer { name } } enrollments { ssn } } }"""
    response = await hub.graphql("si-agency-wuhan", query, {"n": rows.holder_permit})
    body = response.json()
    person = body["data"]["foreigner"]
    assert person["name"]  # the foreigner is in jurisdiction: reached through a Wuhan permit
    permits = {p["number"]: p for p in person["permits"] if p is not None}
    assert rows.holder_permit in permits and rows.older_permit not in permits
    assert None in person["permits"]  # the Yichang permit's employer is Yichang's to read
    assert [e["ssn"] for e in person["enrollments"] if e] == [rows.holder_ssn]
    assert None in person["enrollments"]
    refused = {tuple(e["path"][:2]) for e in body["errors"]}
    assert refused == {("foreigner", "permits"), ("foreigner", "enrollments")}
    assert {e["extensions"]["reason"] for e in body["errors"]} == {REASON}
    assert rows.older_ssn not in response.text

    # Validity is national: the same person's permits, validity only, are all listed.
    national = await hub.graphql(
        "si-agency-wuhan",
        "query($n: ID!) { foreigner(permitNumber: $n) { permits { number isValid } } }",
        {"n": rows.holder_permit},
    )
    assert "errors" not in national.json()
    listed = {p["number"] for p in national.json()["data"]["foreigner"]["permits"]}
    assert {rows.holder_permit, rows.older_permit} <= listed

    # Yichang's agency, asked through the older permit, sees the Yichang enrollment only.
    yichang = await hub.graphql(
        "si-agency-yichang",
        "query($n: ID!) { foreigner(permitNumber: $n) { enrollments { ssn } } }",
        {"n": rows.older_permit},
    )
    found = yichang.json()["data"]["foreigner"]["enrollments"]
    assert [e["ssn"] for e in found if e] == [rows.older_ssn] and None in found


async def test_an_enrollments_permit_elsewhere_is_refused_before_the_wms_is_asked(
    hub: HubClient, simulators: Simulators, cross_region: CrossRegion
) -> None:
    rows = cross_region
    calls = await simulators.upstream_calls()
    response = await hub.graphql(
        "si-agency-wuhan",
        "query($s: ID!) { enrollment(ssn: $s) { ssn permit { number holder { name } } } }",
        {"s": rows.foreign_ssn},
    )
    body = response.json()
    assert body["data"]["enrollment"] == {"ssn": rows.foreign_ssn, "permit": None}
    assert body["errors"][0]["path"] == ["enrollment", "permit"]
    assert body["errors"][0]["extensions"]["reason"] == REASON
    assert await simulators.upstream_calls() == calls
    validity = await hub.graphql(
        "si-agency-wuhan",
        "query($s: ID!) { enrollment(ssn: $s) { permit { number isValid } } }",
        {"s": rows.foreign_ssn},
    )
    assert validity.json()["data"]["enrollment"]["permit"]["number"] == rows.foreign_permit


# ---- the compiled plan answers a refusal as graphql-core does


async def test_a_refusal_is_the_same_bytes_from_the_plan_and_from_graphql_core(
    hub: HubClient, simulators: Simulators
) -> None:
    dataset = simulators.dataset
    wuhan = enrolled_row(dataset, ("420100",), inside=True)
    yichang = enrolled_row(dataset, ("420500",), inside=True)
    assert wuhan is not None and yichang is not None
    # Permits no other test of this module reads: the first ask is a cache miss.
    newest = sorted(dataset.permits, reverse=True)
    wuhan_new = [n for n in newest if n.startswith("420100")]
    yichang_new = [n for n in newest if n.startswith("420500")]
    numbers = [yichang_new[0], wuhan_new[0], wuhan_new[1], yichang_new[1]]
    query = ("query Held($n: [ID!]!) { permits(numbers: $n) { number isValid "
             "holder { name } employer { name } } }")
    trace = {"traceparent": "00-" + "ab" * 16 + "-" + "cd" * 8 + "-01"}
    planned = hub.hub.graphql.stats.planned

    cold = await hub.graphql("si-agency-wuhan", query, {"n": numbers}, headers=trace)
    assert hub.hub.graphql.stats.planned == planned  # cache misses: graphql-core answered
    # A checkpoint checks the same permits' validity (national): now all are in the cache.
    validity = await hub.graphql(
        "exit-entry-wuhan", "query($n: [ID!]!) { permits(numbers: $n) { isValid } }",
        {"n": numbers},
    )
    assert "errors" not in validity.json()
    planned = hub.hub.graphql.stats.planned
    warm = await hub.graphql("si-agency-wuhan", query, {"n": numbers}, headers=trace)

    assert hub.hub.graphql.stats.planned == planned + 1  # all cache hits: the plan answered
    assert cold.status_code == warm.status_code == 200
    assert cold.content == warm.content
    body = warm.json()
    refused = [i for i, n in enumerate(numbers) if not n.startswith("420100")]
    assert refused and len(refused) < len(numbers)
    assert [e["path"] for e in body["errors"]] == [["permits", i] for i in refused]
    assert [p is None for p in body["data"]["permits"]] == [i in refused for i in range(4)]
    records = await _records(hub, "si-agency-wuhan", "Held")
    assert len(records) == 2
    for record in records:
        assert record.outcome == "PARTIAL"
        assert record.denied == tuple(sorted(f"permits.{i}" for i in refused))
        assert {numbers[i] for i in refused} <= set(record.subjects)


async def _records(hub: HubClient, client: str, operation: str) -> list[Any]:
    from observability.audit import AuditFilter

    page = await hub.hub.audit.search(
        AuditFilter(client_id=client, operation=operation), 50, None, subject_view=False,
        today=dt.date.today(),
    )
    return list(page.records)


# ---- the audit record: DENIED or PARTIAL, found by the refused subjects

FIND = """query($s: ID!) { accessLog(filter: {subject: $s}) {
            edges { node { outcome clientId subjects denied errorCodes operation } } } }"""


async def test_refused_rows_are_audited_denied_or_partial_and_found_by_their_subjects(
    hub: HubClient, simulators: Simulators
) -> None:
    dataset = simulators.dataset
    wuhan = enrolled_row(dataset, ("420100",), inside=True)
    yichang = enrolled_row(dataset, ("420500",), inside=True)
    assert wuhan is not None and yichang is not None
    denied = await hub.graphql(
        "si-agency-wuhan",
        "query AllOut($s: ID!, $n: ID!) { enrollment(ssn: $s) { status } "
        "foreigner(permitNumber: $n) { passportNumber } }",
        {"s": yichang.ssn, "n": yichang.permit},
    )
    assert denied.status_code == 200
    assert denied.json()["data"] == {"enrollment": None, "foreigner": None}
    partial = await hub.graphql(
        "si-agency-wuhan",
        "query Some($s: ID!, $t: ID!) { a: enrollment(ssn: $s) { status } "
        "b: enrollment(ssn: $t) { status } }",
        {"s": wuhan.ssn, "t": yichang.ssn},
    )
    assert partial.json()["data"]["a"] is not None and partial.json()["data"]["b"] is None

    for subject, operation, outcome, paths in (
        (yichang.ssn, "AllOut", "DENIED", ["enrollment", "foreigner"]),
        (yichang.permit, "AllOut", "DENIED", ["enrollment", "foreigner"]),
        (yichang.ssn, "Some", "PARTIAL", ["b"]),
    ):
        log = await hub.graphql("auditor-hubei", FIND, {"s": subject})
        nodes = [
            e["node"] for e in log.json()["data"]["accessLog"]["edges"]
            if e["node"]["operation"] == operation
        ]
        assert len(nodes) == 1, (subject, operation, log.text[:300])
        node = nodes[0]
        assert node["outcome"] == outcome and node["clientId"] == "si-agency-wuhan"
        assert subject in node["subjects"] and "FORBIDDEN" in node["errorCodes"]
        assert sorted(node["denied"]) == paths


# ---- a QR check is national; the permit it reveals is bound by its own fields


async def test_a_scanned_permit_outside_the_jurisdiction_is_checked_but_not_revealed(
    hub: HubClient, simulators: Simulators
) -> None:
    yichang = enrolled_row(simulators.dataset, ("420500",), inside=True)
    assert yichang is not None
    async with httpx.AsyncClient() as client:
        qr = await client.get(f"{simulators.wms_url}/permits/{yichang.permit}/qr?ttl=300")
    payload = qr.json()["payload"]
    query = ("query($p: String!) { verifyPermitQr(payload: $p) { valid reason "
             "permit { number holder { name } } } }")
    response = await hub.graphql("exit-entry-wuhan", query, {"p": payload})
    body = response.json()
    assert body["data"]["verifyPermitQr"] == {"valid": True, "reason": None, "permit": None}
    assert body["errors"][0]["path"] == ["verifyPermitQr", "permit"]
    assert body["errors"][0]["extensions"]["reason"] == REASON
    national = await hub.graphql(
        "exit-entry-wuhan",
        "query($p: String!) { verifyPermitQr(payload: $p) { valid permit { number } } }",
        {"p": payload},
    )
    assert national.json()["data"]["verifyPermitQr"]["permit"]["number"] == yichang.permit
