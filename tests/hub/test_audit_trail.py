"""Issue 4 through the hub: every access recorded before data leaves, provable, searchable."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib

from observability.audit import AuditFilter, AuditRecord, check_evidence
from tests.conftest import HubClient, Simulators
from tests.services import database_outage

CHECK = "query Check($n: ID!) { permit(number: $n) { number status enrollment { ssn } } }"
LOG = """query($s: ID!) { accessLog(filter: {subject: $s}) { edges { node {
           id kind clientId agency purpose operation fields subjects outcome traceId
           responseSha256 } } } }"""


async def _records(hub: HubClient) -> list[AuditRecord]:
    page = await hub.hub.audit.search(
        AuditFilter(), 500, None, subject_view=False, today=dt.date.today()
    )
    return list(page.records)


async def test_a_data_response_is_recorded_with_what_it_returned(
    hub: HubClient, simulators: Simulators
) -> None:
    samples = simulators.dataset.samples
    response = await hub.graphql(  # the enrolled sample is in Yichang's jurisdiction
        "si-agency-yichang", CHECK, {"n": samples["enrolled_permit"]}, purpose="benefit-check"
    )
    assert response.status_code == 200
    log = await hub.graphql("auditor-hubei", LOG, {"s": samples["enrolled_permit"]})
    nodes = {e["node"]["id"]: e["node"] for e in log.json()["data"]["accessLog"]["edges"]}
    record = nodes[response.headers["x-hub-audit-record"]]
    assert record["clientId"] == "si-agency-yichang"
    assert record["purpose"] == "benefit-check"
    assert record["operation"] == "Check"
    assert record["outcome"] == "OK"
    assert {"WorkPermit.status", "Enrollment.ssn"} <= set(record["fields"])
    assert {samples["enrolled_permit"], samples["enrolled_ssn"]} <= set(record["subjects"])
    assert record["responseSha256"] == hashlib.sha256(response.content).hexdigest()
    assert "holder" not in log.text  # auditors see access records, never the data


async def test_reading_the_log_is_itself_recorded(hub: HubClient, simulators: Simulators) -> None:
    subject = simulators.dataset.samples["valid_permit"]
    await hub.graphql("auditor-hubei", LOG, {"s": subject})
    reads = [r for r in await _records(hub) if r.kind == "audit_read"]
    assert len(reads) == 1
    assert reads[0].client_id == "auditor-hubei" and subject in reads[0].subjects


async def test_denied_malformed_and_anonymous_requests_each_leave_a_record(
    hub: HubClient, simulators: Simulators
) -> None:
    number = simulators.dataset.samples["enrolled_permit"]
    denied = await hub.graphql("exit-entry-wuhan", CHECK, {"n": number})
    malformed = await hub.graphql(
        "exit-entry-wuhan", CHECK.replace("enrollment { ssn }", ""), {"n": number[:17] + "?"}
    )
    anonymous = await hub.http.post("/graphql", json={"query": "{ __typename }"})
    assert (denied.status_code, malformed.status_code, anonymous.status_code) == (403, 400, 401)
    records = [r for r in await _records(hub) if r.kind == "graphql"]
    outcomes = sorted((r.outcome, r.error_codes) for r in records)
    assert outcomes == [
        ("DENIED", ("FORBIDDEN",)),
        ("DENIED", ("UNAUTHENTICATED",)),
        ("ERROR", ("BAD_USER_INPUT",)),
    ]
    forbidden = next(r for r in records if r.error_codes == ("FORBIDDEN",))
    assert forbidden.denied == ("permit.enrollment", "permit.enrollment.ssn")


async def test_200_concurrent_requests_give_200_records_and_a_valid_chain(
    hub: HubClient, simulators: Simulators
) -> None:
    numbers = sorted(simulators.dataset.permits)[:200]
    await hub.token("exit-entry-wuhan")
    commits_before = hub.hub.audit.stats.commits
    query = "query($n: ID!) { permit(number: $n) { status } }"
    responses = await asyncio.gather(
        *(hub.graphql("exit-entry-wuhan", query, {"n": n}) for n in numbers)
    )
    assert [r.status_code for r in responses] == [200] * 200
    ids = {r.headers["x-hub-audit-record"] for r in responses}
    stored = {r.id for r in await _records(hub) if r.client_id == "exit-entry-wuhan"}
    assert ids <= stored and len(ids) == 200
    assert hub.hub.audit.stats.commits - commits_before < 200  # grouped, not one per request
    assert (await hub.hub.audit.verify()).ok


async def test_audit_store_down_means_no_data_and_nothing_lost_after(
    hub: HubClient, simulators: Simulators, database_url: str
) -> None:
    query = "query($n: ID!) { permit(number: $n) { status holder { name } } }"
    number = simulators.dataset.samples["valid_permit"]
    before = await hub.graphql("exit-entry-wuhan", query, {"n": number})
    assert before.status_code == 200
    async with database_outage(database_url):
        during = await hub.graphql("exit-entry-wuhan", query, {"n": number})
        ready = await hub.http.get("/readyz")
    assert ready.status_code == 503 and ready.json()["checks"]["audit"] is False
    assert during.status_code == 503
    assert during.json()["errors"][0]["extensions"]["code"] == "INTERNAL"
    assert "data" not in during.json() and "holder" not in during.text
    after = await hub.graphql("exit-entry-wuhan", query, {"n": number})
    assert after.status_code == 200
    stored = {r.id for r in await _records(hub)}
    assert {before.headers["x-hub-audit-record"], after.headers["x-hub-audit-record"]} <= stored
    assert (await hub.hub.audit.verify()).ok


async def test_the_evidence_header_proves_the_body_and_fails_on_one_changed_byte(
    hub: HubClient, simulators: Simulators
) -> None:
    response = await hub.graphql(
        "exit-entry-wuhan",
        CHECK.replace("enrollment { ssn }", ""),
        {"n": simulators.dataset.samples["valid_permit"]},
    )
    jwks = (await hub.http.get("/.well-known/jwks.json")).json()
    evidence = response.headers["x-hub-evidence"]
    check = check_evidence(evidence, response.content, jwks)
    assert check.ok, check.reason
    assert check.claims is not None
    assert check.claims.record_id == response.headers["x-hub-audit-record"]
    tampered = bytearray(response.content)
    tampered[10] ^= 0x01
    assert not check_evidence(evidence, bytes(tampered), jwks).ok


async def test_concurrent_responses_each_carry_evidence_for_their_own_body_only(
    hub: HubClient, simulators: Simulators
) -> None:
    query = CHECK.replace("enrollment { ssn }", "")
    numbers = list(simulators.dataset.permits)[:5]
    responses = await asyncio.gather(
        *(hub.graphql("exit-entry-wuhan", query, {"n": n}) for n in numbers)
    )
    jwks = (await hub.http.get("/.well-known/jwks.json")).json()

    for i, response in enumerate(responses):
        evidence = response.headers["x-hub-evidence"]
        check = check_evidence(evidence, response.content, jwks)
        assert check.ok, check.reason
        assert check.claims is not None
        assert check.claims.record_id == response.headers["x-hub-audit-record"]
        other = responses[(i + 1) % len(responses)].content
        assert not check_evidence(evidence, other, jwks).ok


SUBJECT_LOG = "query($s: ID!) { subjectAccessLog(subject: $s) { edges { node { clientId } } } }"
FULL_LOG = "query($s: ID!) { accessLog(filter: {subject: $s}) { edges { node { clientId } } } }"


async def test_an_embargoed_investigation_is_hidden_from_the_subject_view_not_from_auditors(
    hub: HubClient, simulators: Simulators
) -> None:
    today = dt.date.today()
    auth = hub.hub.auth
    _, secret = await auth.add_client(
        "ps-investigation-wuhan",
        "Wuhan PSB",
        ["permit:validity"],
        ["investigation"],
        embargoed_until=today + dt.timedelta(days=30),
    )
    _, tracker = await auth.add_client("data-tracker", "Hubei HRSS", ["audit:subject"], ["audit"])
    hub.secrets.update({"ps-investigation-wuhan": str(secret), "data-tracker": str(tracker)})
    subject = simulators.dataset.samples["valid_permit"]
    query = "query($n: ID!) { permit(number: $n) { status } }"
    await hub.graphql("ps-investigation-wuhan", query, {"n": subject}, purpose="investigation")
    await hub.graphql("exit-entry-wuhan", query, {"n": subject})

    def clients(response: object) -> set[str]:
        data = response.json()["data"]  # type: ignore[attr-defined]
        edges = next(iter(data.values()))["edges"]
        return {e["node"]["clientId"] for e in edges}

    tracked = await hub.graphql("data-tracker", SUBJECT_LOG, {"s": subject}, purpose="audit")
    audited = await hub.graphql("auditor-hubei", FULL_LOG, {"s": subject})
    assert clients(tracked) == {"exit-entry-wuhan"}
    # the tracker's own read names the subject, so auditors see it too
    assert clients(audited) == {"exit-entry-wuhan", "ps-investigation-wuhan", "data-tracker"}
    malformed = await hub.graphql("data-tracker", SUBJECT_LOG, {"s": "x' OR 1=1"}, purpose="audit")
    assert malformed.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_a_disabled_clients_request_is_recorded_with_the_client_and_why(
    hub: HubClient, simulators: Simulators
) -> None:
    number = simulators.dataset.samples["valid_permit"]
    await hub.token("exit-entry-wuhan")  # issued while the client was enabled
    await hub.hub.auth.disable_client("exit-entry-wuhan")
    refused = await hub.graphql("exit-entry-wuhan", CHECK, {"n": number})
    assert refused.status_code == 401
    assert refused.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    record = next(r for r in await _records(hub) if r.kind == "graphql")  # newest first
    assert record.client_id == "exit-entry-wuhan"
    assert record.outcome == "DENIED"
    assert set(record.error_codes) == {"UNAUTHENTICATED", "CLIENT_DISABLED"}


async def test_a_revoked_tokens_request_is_recorded_with_its_client_and_why(
    hub: HubClient, simulators: Simulators
) -> None:
    number = simulators.dataset.samples["valid_permit"]
    token = await hub.token("exit-entry-wuhan")
    await hub.http.post(
        "/oauth/revoke", data={"token": token},
        auth=("exit-entry-wuhan", hub.secrets["exit-entry-wuhan"]),
    )
    refused = await hub.graphql("exit-entry-wuhan", CHECK, {"n": number})
    assert refused.status_code == 401
    record = next(r for r in await _records(hub) if r.kind == "graphql")  # newest first
    assert record.client_id == "exit-entry-wuhan"
    assert set(record.error_codes) == {"UNAUTHENTICATED", "TOKEN_REVOKED"}


async def test_a_client_change_record_says_what_changed(hub: HubClient) -> None:
    auth = hub.hub.auth
    await auth.set_scopes("exit-entry-wuhan", ["permit:validity", "card:read"])
    await auth.set_jurisdiction("exit-entry-wuhan", ["42"])
    await auth.disable_client("exit-entry-wuhan")
    changes = [r for r in await _records(hub)
               if r.operation == "client_changed" and r.client_id == "exit-entry-wuhan"]
    assert [r.fields for r in reversed(changes[:3])] == [  # newest first
        ("scopes: +card:read -card:status -events:subscribe -permit:holder",),
        ("jurisdiction: +42 -420100",),
        ("enabled: yes -> no",),
    ]
