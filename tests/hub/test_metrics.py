"""Issue 7 (metrics): /metrics counts what the operator needs after a few requests."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import HubClient, Simulators


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_metrics_count_requests_refusals_and_audit_commits(
    hub: HubClient, simulators: Simulators
) -> None:
    number = simulators.dataset.samples["valid_permit"]
    query = "query($n: ID!) { permit(number: $n) { status } }"
    for _ in range(3):
        assert (await hub.graphql("exit-entry-wuhan", query, {"n": number})).status_code == 200
    await hub.graphql(
        "exit-entry-wuhan",
        "query($n: ID!) { permit(number: $n) { enrollment { ssn } } }",
        {"n": number},
    )
    await hub.http.post("/graphql", json={"query": "{ __typename }"})
    response = await hub.http.get("/metrics")
    assert response.status_code == 200
    samples = _samples(response.text)
    ok = (("client", "exit-entry-wuhan"), ("outcome", "OK"), ("root_fields", "Query.permit"))
    assert samples[("hub_graphql_requests_total", ok)] == 3
    assert samples[("hub_refusals_total", (("code", "FORBIDDEN"),))] == 1
    assert samples[("hub_refusals_total", (("code", "UNAUTHENTICATED"),))] == 1
    assert samples[("hub_graphql_request_seconds_count", (("outcome", "OK"),))] == 3
    assert samples[("hub_audit_records_total", ())] >= 5
    assert 0 < samples[("hub_audit_commits_total", ())] <= samples[("hub_audit_records_total", ())]
    assert "Query.permit" in response.text and number not in response.text
