"""Issue 2: one schema over the three source systems, joined, batched, validated first."""

from __future__ import annotations

from tests.conftest import HubClient, Simulators, SqlCounter
from tests.services import REDIS_URL

VALIDITY = "query($n: ID!) { permit(number: $n) { number status isValid validUntil medium } }"


async def test_a_valid_permit_reads_as_valid_and_a_cancelled_one_does_not(
    hub: HubClient, simulators: Simulators
) -> None:
    samples = simulators.dataset.samples
    valid = await hub.graphql("exit-entry-wuhan", VALIDITY, {"n": samples["valid_permit"]})
    cancelled = await hub.graphql("exit-entry-wuhan", VALIDITY, {"n": samples["cancelled_permit"]})
    assert valid.status_code == 200, valid.text
    assert valid.json()["data"]["permit"]["status"] == "VALID"
    assert valid.json()["data"]["permit"]["isValid"] is True
    assert cancelled.json()["data"]["permit"]["status"] == "CANCELLED"
    assert cancelled.json()["data"]["permit"]["isValid"] is False


async def test_an_unknown_permit_is_null_without_error(
    hub: HubClient, simulators: Simulators
) -> None:
    valid = simulators.dataset.samples["valid_permit"]
    unknown = valid[:10] + ("9999999" if valid[10:17] != "9999999" else "9999998")
    from connectors.identifiers import mod11_2_check_char

    unknown = unknown[:17] + mod11_2_check_char(unknown[:17])
    response = await hub.graphql("exit-entry-wuhan", VALIDITY, {"n": unknown})
    assert response.json() == {"data": {"permit": None}}


async def test_a_malformed_permit_number_is_refused_before_any_upstream_call(
    hub: HubClient, simulators: Simulators
) -> None:
    valid = simulators.dataset.samples["valid_permit"]
    wrong_check = valid[:17] + ("0" if valid[17] != "0" else "1")
    for bad in (wrong_check, "420100", "'; DROP TABLE enrollments; --"):
        before = await simulators.upstream_calls()
        response = await hub.graphql("exit-entry-wuhan", VALIDITY, {"n": bad})
        assert response.status_code == 400
        assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
        assert "data" not in response.json()
        assert await simulators.upstream_calls() == before


async def test_a_batch_of_500_is_one_call_per_source_system(
    hub: HubClient, simulators: Simulators
) -> None:
    numbers = sorted(simulators.dataset.permits)[:500]
    regions = {simulators.dataset.permits[n].work_location for n in numbers}
    sql = SqlCounter(hub.hub)
    response = await hub.graphql(
        "ssc-card-center-hubei",
        """query($ns: [ID!]!) {
             permits(numbers: $ns) { number status enrollment { ssn } cards { status } } }""",
        {"ns": numbers},
    )
    assert response.status_code == 200, response.text[:500]
    permits = response.json()["data"]["permits"]
    assert [p["number"] for p in permits] == numbers
    assert any(p["enrollment"] for p in permits) and any(p["cards"] for p in permits)
    wms = await simulators.stats(simulators.wms_url)
    cards = await simulators.stats(simulators.cards_url)
    assert wms["requests"] == {"POST /permits:batch": 1}
    assert cards["requests"] == {"POST /cards:batch": 1}
    served = regions & set(simulators.agency_urls)
    assert sql.counts == {region: 1 for region in served}


async def test_enrollment_is_read_at_the_agency_of_the_work_location(
    hub: HubClient, simulators: Simulators
) -> None:
    samples = simulators.dataset.samples
    response = await hub.graphql(
        "si-agency-yichang",  # the enrolled sample is a Yichang permit: in its jurisdiction
        """query($n: ID!) {
             permit(number: $n) { workLocation { code } enrollment { ssn region { code } } } }""",
        {"n": samples["enrolled_permit"]},
    )
    permit = response.json()["data"]["permit"]
    assert permit["enrollment"]["ssn"] == samples["enrolled_ssn"]
    assert permit["enrollment"]["region"]["code"] == permit["workLocation"]["code"]


async def test_one_query_joins_permit_holder_enrollment_and_cards(
    hub: HubClient, simulators: Simulators
) -> None:
    ssn = simulators.dataset.samples["enrolled_ssn"]
    expected_cards = {c.card_number for c in simulators.dataset.cards.get(ssn, ())}
    response = await hub.graphql(
        "ssc-card-center-hubei",
        """query($s: ID!) { enrollment(ssn: $s) {
             ssn permit { number holder { name permits { number } } }
             cards { cardNumber kind status } } }""",
        {"s": ssn},
    )
    enrollment = response.json()["data"]["enrollment"]
    assert enrollment["ssn"] == ssn
    holder = enrollment["permit"]["holder"]
    assert enrollment["permit"]["number"] in {p["number"] for p in holder["permits"]}
    assert {c["cardNumber"] for c in enrollment["cards"]} == expected_cards


async def test_foreigner_by_ssn_and_by_permit_is_the_same_person(
    hub: HubClient, simulators: Simulators
) -> None:
    samples = simulators.dataset.samples
    query = """query($p: ID, $s: ID) { foreigner(permitNumber: $p, ssn: $s) {
                 name passportNumber enrollments { ssn } } }"""
    client = "si-agency-yichang"  # the enrolled sample is in Yichang
    by_permit = await hub.graphql(client, query, {"p": samples["enrolled_permit"]})
    by_ssn = await hub.graphql(client, query, {"s": samples["enrolled_ssn"]})
    assert by_permit.json()["data"]["foreigner"] == by_ssn.json()["data"]["foreigner"]
    assert samples["enrolled_ssn"] in {
        e["ssn"] for e in by_ssn.json()["data"]["foreigner"]["enrollments"]
    }
    both = await hub.graphql(
        client, query, {"p": samples["enrolled_permit"], "s": samples["enrolled_ssn"]}
    )
    assert both.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_readyz_reports_every_dependency(hub: HubClient) -> None:
    response = await hub.http.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"] == {
        "database": True,
        "audit": True,
        "redis": True if REDIS_URL else "in-process",  # never "up" when there is none
        "wms": True,
        "cards": True,
        "agency-420100": True,
        "agency-420500": True,
        "signing_key": True,
    }
    assert 0 <= response.json()["signing_key_age_seconds"] < 600  # created with this hub
