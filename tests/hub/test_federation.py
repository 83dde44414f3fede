"""The hub as a federation subgraph: `_service` and `_entities`, held to a root field's checks."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

import pytest

from connectors.identifiers import make_permit_number, make_ssn
from observability.audit import AuditFilter
from tests.conftest import HubClient, Simulators, open_hub
from tests.services import fresh_database

ENTITIES = """query($r: [_Any!]!) { _entities(representations: $r) {
  ... on WorkPermit { number status %s } } }"""
WUHAN = "exit-entry-wuhan"


@pytest.fixture(scope="module")
async def hub(
    simulators: Simulators, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[HubClient]:
    tmp = tmp_path_factory.mktemp("federation")
    async with fresh_database(tmp) as url, open_hub(simulators, url, tmp) as client:
        yield client


def _permit(simulators: Simulators, region: str) -> str:
    return next(n for n in sorted(simulators.dataset.permits) if n.startswith(region))


def _reps(*numbers: str) -> dict[str, object]:
    return {"r": [{"__typename": "WorkPermit", "number": n} for n in numbers]}


async def test_service_sdl_is_the_subgraph_with_its_keys(hub: HubClient) -> None:
    body = (await hub.graphql(WUHAN, "{ _service { sdl } }")).json()
    sdl = body["data"]["_service"]["sdl"]
    assert 'type WorkPermit @key(fields: "number")' in sdl
    assert 'type Enrollment @key(fields: "ssn")' in sdl
    assert "federation/v2" in sdl


async def test_an_entity_of_the_jurisdiction_is_answered_and_audited_by_its_number(
    hub: HubClient, simulators: Simulators
) -> None:
    number = _permit(simulators, "420100")
    response = await hub.graphql(WUHAN, ENTITIES % "holder { name }", _reps(number))
    body = response.json()
    assert "errors" not in body, body
    [entity] = body["data"]["_entities"]
    assert entity["number"] == number and entity["holder"]["name"]
    page = await hub.hub.audit.search(
        AuditFilter(subject=number), subject_view=False, today=dt.date.today()
    )
    assert any(r.client_id == WUHAN and r.outcome == "OK" for r in page.records)


async def test_an_entity_outside_the_jurisdiction_is_refused_before_any_upstream_call(
    hub: HubClient, simulators: Simulators
) -> None:
    inside, outside = _permit(simulators, "420100"), _permit(simulators, "420500")
    calls = await simulators.upstream_calls()
    body = (await hub.graphql(WUHAN, ENTITIES % "holder { name }", _reps(outside))).json()
    assert body["data"]["_entities"] == [None]
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert body["errors"][0]["extensions"]["reason"] == "OUT_OF_JURISDICTION"
    assert body["errors"][0]["path"] == ["_entities", 0]
    assert await simulators.upstream_calls() == calls
    # Validity is national, as through `permit`: the same entity without its holder is read.
    both = (await hub.graphql(WUHAN, ENTITIES % "", _reps(outside, inside))).json()
    assert [e["number"] for e in both["data"]["_entities"]] == [outside, inside]


async def test_entity_fields_outside_the_scopes_are_refused(
    hub: HubClient, simulators: Simulators
) -> None:
    ssn = next(iter(sorted(simulators.dataset.cards)))
    query = """query($r: [_Any!]!) { _entities(representations: $r) {
      ... on Enrollment { ssn status } } }"""
    response = await hub.graphql(
        WUHAN, query, {"r": [{"__typename": "Enrollment", "ssn": ssn}]},
        purpose="residence-permit-check",  # the scope refusal comes before the purpose's
    )
    assert response.status_code == 403
    assert response.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    detail = (await hub.graphql(WUHAN, ENTITIES % "position", _reps(_permit(simulators, "420100"))))
    assert detail.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_a_bad_representation_is_bad_input_before_any_upstream_call(
    hub: HubClient, simulators: Simulators
) -> None:
    good = make_permit_number("420100", 2025, 1234)
    bad = good[:-1] + ("0" if good[-1] != "0" else "1")
    calls = await simulators.upstream_calls()
    for variables in (
        _reps(bad),
        {"r": [{"__typename": "Foreigner", "id": "x"}]},
        {"r": [{"__typename": "WorkPermit", "number": good, "extra": 1}]},
        _reps(*[good] * 501),
    ):
        response = await hub.graphql(WUHAN, ENTITIES % "", variables)
        assert response.status_code == 400, variables
        assert response.json()["errors"][0]["extensions"]["code"] in {
            "BAD_USER_INPUT", "QUERY_TOO_COMPLEX"
        }
    # A representation of a type the selection does not name would be read unchecked.
    enrollment = {"r": [{"__typename": "Enrollment", "ssn": next(iter(simulators.dataset.cards))}]}
    response = await hub.graphql(WUHAN, ENTITIES % "", enrollment)
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert await simulators.upstream_calls() == calls


async def test_entities_need_a_purpose_covering_the_types_root_field(
    hub: HubClient, simulators: Simulators
) -> None:
    number = _permit(simulators, "420100")
    center = "ssc-card-center-hubei"
    response = await hub.graphql(center, ENTITIES % "", _reps(number), purpose="card-service")
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "PURPOSE_NOT_ALLOWED"
    assert error["extensions"]["notCovered"] == ["permit"]
    # Refused before it ran, the request is still found by the permit it named.
    page = await hub.hub.audit.search(
        AuditFilter(subject=number), subject_view=False, today=dt.date.today()
    )
    assert any(r.client_id == center and r.outcome == "DENIED" for r in page.records)
    allowed = await hub.graphql(center, ENTITIES % "", _reps(number), purpose="card-issuance")
    assert allowed.json()["data"]["_entities"][0]["number"] == number


async def test_an_enrollment_entity_elsewhere_is_refused_before_its_agency_is_asked(
    hub: HubClient, simulators: Simulators
) -> None:
    yichang = make_ssn("420500", 77_777_777_701)
    query = """query($r: [_Any!]!) { _entities(representations: $r) {
      ... on Enrollment { ssn status } } }"""
    calls = await simulators.upstream_calls()
    response = await hub.graphql(
        "si-agency-wuhan", query, {"r": [{"__typename": "Enrollment", "ssn": yichang}]},
        purpose="benefit-check",
    )
    body = response.json()
    assert body["data"]["_entities"] == [None]
    assert body["errors"][0]["extensions"]["reason"] == "OUT_OF_JURISDICTION"
    assert await simulators.upstream_calls() == calls
    page = await hub.hub.audit.search(
        AuditFilter(subject=yichang), subject_view=False, today=dt.date.today()
    )
    [record] = page.records
    assert (record.client_id, record.outcome, record.denied) == (
        "si-agency-wuhan", "DENIED", ("_entities.0",)
    )
