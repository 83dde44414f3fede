"""Issue 7 (metrics): /metrics counts what the operator needs after a few requests."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import HubClient, Simulators, open_hub


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


async def test_metrics_show_upstreams_cache_breakers_and_audit_batches(
    hub: HubClient, simulators: Simulators
) -> None:
    number = simulators.dataset.samples["valid_permit"]  # Wuhan: the client reads its cards
    query = "query($n: ID!) { permit(number: $n) { status cards { status } } }"
    for _ in range(3):  # the first reads the WMS, the next two are cache hits
        assert (await hub.graphql("exit-entry-wuhan", query, {"n": number})).status_code == 200
    samples = _samples((await hub.http.get("/metrics")).text)

    ok = lambda upstream: (("result", "ok"), ("upstream", upstream))  # noqa: E731
    assert samples[("hub_upstream_call_seconds_count", ok("wms"))] == 1
    assert samples[("hub_upstream_call_seconds_count", ok("cards"))] == 3
    assert samples[("hub_cache_lookups_total", (("cache", "permits"), ("result", "hit")))] == 2
    assert samples[("hub_cache_lookups_total", (("cache", "permits"), ("result", "miss")))] == 1
    assert samples[("hub_cache_hit_ratio", (("cache", "permits"),))] == 2 / 3
    for upstream in ("wms", "cards", "agency-420100", "agency-420500"):
        assert samples[("hub_upstream_breaker_open", (("upstream", upstream),))] == 0
    commits = samples[("hub_audit_commit_seconds_count", ())]
    assert commits >= 1
    assert samples[("hub_audit_commit_batch_size_sum", ())] >= 3  # records in those commits


async def test_readyz_goes_unready_when_the_signing_key_is_past_its_age(
    simulators: Simulators, database_url: str, tmp_path: Path
) -> None:
    async with open_hub(
        simulators, database_url, tmp_path, signing_key_max_age_seconds=0
    ) as client:
        response = await client.http.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["signing_key"] is False
    assert response.json()["status"] == "unready"
