"""The order of refusals on POST /graphql (README.md, "Architecture": revoked, purpose, rate, input,
policy, the purpose's operations, cost).

The hub reads revocation in one Redis round trip after the local checks have run, and counts
the request rate and cost budget in the process (reconciled with Redis in the background). A
client must not be able to tell: a revoked token is refused as revoked whatever else is wrong
with the request, a client over its rate is told so before anything about its input, and a
refused request reaches no source system.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import redis.asyncio as redis_async

from infra.counters import RateLimit
from observability.audit import AuditFilter
from tests.conftest import HubClient, Simulators, give_case_review, open_hub
from tests.services import REDIS_URL

CLIENT = "exit-entry-wuhan"
STATUS = "query Status($n: ID!) { permit(number: $n) { number status } }"
HOLDER = "query Holder($n: ID!) { permit(number: $n) { holder { name } } }"  # not its scope
# Its scope, not the purpose of a case review (`give_case_review`: investigation's operations,
# no officer needed: officers are tests/hub/test_people.py's).
QR = '{ verifyPermitQr(payload: "x") { valid } }'


async def _revoke(client: HubClient) -> str:
    token = await client.token(CLIENT)
    response = await client.http.post(
        "/oauth/revoke", data={"token": token}, auth=(CLIENT, client.secrets[CLIENT])
    )
    assert response.status_code == 200
    return token


async def test_a_revoked_token_is_refused_as_revoked_whatever_else_is_wrong(
    hub: HubClient, simulators: Simulators
) -> None:
    number = sorted(simulators.dataset.permits)[0]
    assert (await hub.graphql(CLIENT, STATUS, {"n": number})).status_code == 200
    await _revoke(hub)
    before = await simulators.upstream_calls()
    refused = [
        await hub.graphql(CLIENT, STATUS, {"n": number}),  # nothing else wrong
        await hub.graphql(CLIENT, HOLDER, {"n": number}),  # outside its scopes
        await hub.graphql(CLIENT, "{ permit(", None),  # not GraphQL
        await hub.graphql(CLIENT, STATUS, {"n": number}, purpose="no-such-purpose"),
        await hub.graphql(CLIENT, QR, None, purpose="investigation"),  # outside its purpose
    ]
    for response in refused:
        assert response.status_code == 401, response.text
        assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        assert "revoked" in response.json()["errors"][0]["message"]
    assert await simulators.upstream_calls() == before
    page = await hub.hub.audit.search(
        AuditFilter(client_id=CLIENT), subject_view=False, today=dt.date.today()
    )
    assert [r.outcome for r in page.records[: len(refused)]] == ["DENIED"] * len(refused)


async def test_a_client_over_its_rate_hears_so_before_anything_about_its_input(
    simulators: Simulators, database_url: str, tmp_path: Path
) -> None:
    number = sorted(simulators.dataset.permits)[0]
    async with open_hub(simulators, database_url, tmp_path, rate_limit_per_minute=2) as client:
        # One window for the whole test (it once crossed into the next between requests).
        hub = client.hub
        review = await give_case_review(hub.auth)
        per_minute = hub.settings.rate_limit_per_minute
        hub.rate_limit = RateLimit(hub.counters, per_minute, clock=lambda: 605.0)
        # 6 requests span at most two one-minute windows: at most 4 are within the rate.
        answers = [await client.graphql(CLIENT, STATUS, {"n": number}) for _ in range(6)]
        assert answers[-1].status_code == 429
        before = await simulators.upstream_calls()
        bad_input = await client.graphql(CLIENT, "{ permit(", None)
        forbidden = await client.graphql(CLIENT, HOLDER, {"n": number})
        outside = await client.graphql(CLIENT, QR, None, purpose=review)
        other = await client.graphql("si-agency-wuhan", "{ permit(", None)
        assert await simulators.upstream_calls() == before
    for response in (bad_input, forbidden, outside):
        assert response.status_code == 429, response.text
        assert response.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
    # another client, within its rate, is told what is wrong with its input
    assert other.status_code == 400
    assert other.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_a_request_is_held_to_its_scopes_then_to_its_purpose_then_to_its_arguments(
    hub: HubClient, simulators: Simulators
) -> None:
    """Field policy (what the client may ever read) before the purpose's operations (what this
    request is for), and those before the argument checks; a document that is not GraphQL is
    refused as input before any of them."""
    review = await give_case_review(hub.hub.auth)
    before = await simulators.upstream_calls()
    answers = {
        name: await hub.graphql(CLIENT, query, None, purpose=review)
        for name, query in {
            "not GraphQL": '{ verifyPermitQr(payload: "x") { valid }',
            "outside scopes and purpose": '{ verifyPermitQr(payload: "x") { valid } '
            'enrollment(ssn: "x") { ssn } }',
            "outside purpose, bad argument": '{ verifyPermitQr(payload: "x") { valid } '
            'permit(number: "not-a-permit") { status } }',
            "bad argument only": '{ permit(number: "not-a-permit") { status } }',
        }.items()
    }
    assert await simulators.upstream_calls() == before
    assert {name: (r.status_code, r.json()["errors"][0]["extensions"]["code"])
            for name, r in answers.items()} == {
        "not GraphQL": (400, "BAD_USER_INPUT"),
        "outside scopes and purpose": (403, "FORBIDDEN"),
        "outside purpose, bad argument": (403, "PURPOSE_NOT_ALLOWED"),
        "bad argument only": (400, "BAD_USER_INPUT"),
    }


async def _redis_calls(client: redis_async.Redis) -> dict[str, int]:
    stats = await client.info("commandstats")
    return {name.removeprefix("cmdstat_"): value["calls"] for name, value in stats.items()}


@pytest.mark.skipif(REDIS_URL is None, reason="counts the commands Redis receives")
async def test_a_validity_check_on_a_warm_cache_sends_nothing_to_redis(
    simulators: Simulators, database_url: str, tmp_path: Path
) -> None:
    """Nothing at all: revocation is judged on this instance's replica, the permit comes from
    its local copy, and the request rate and the cost budget are counted in the process and
    reach Redis with its next sync, off the request's path (here the hub's syncs wait an hour;
    the test makes one itself)."""
    assert REDIS_URL is not None
    number = sorted(simulators.dataset.permits)[1]
    async with open_hub(simulators, database_url, tmp_path, counter_sync_interval=3600) as hub:
        counters = hub.hub.counters
        per_minute = hub.hub.settings.rate_limit_per_minute
        hub.hub.rate_limit = RateLimit(counters, per_minute, clock=lambda: 605.0)
        assert (await hub.graphql(CLIENT, STATUS, {"n": number})).status_code == 200  # warms it
        before_wms = await simulators.upstream_calls()
        stats = redis_async.Redis.from_url(REDIS_URL)
        try:
            before = await _redis_calls(stats)
            response = await hub.graphql(CLIENT, STATUS, {"n": number})
            after = await _redis_calls(stats)
        finally:
            await stats.aclose()

        assert response.status_code == 200
        assert response.json()["data"]["permit"]["number"] == number
        assert await simulators.upstream_calls() == before_wms
        sent = {name: after[name] - before.get(name, 0) for name in after}
        sent["info"] -= 1  # ours
        # The replica's reader waits on XREAD meanwhile (not the request's); nothing else.
        assert {name for name, n in sent.items() if n} <= {"xread"}
        # Served from the local copy, and audited as a read of the permit all the same.
        record = await hub.hub.audit.get(response.headers["x-hub-audit-record"])
        assert record is not None and number in record.subjects
        employer = simulators.dataset.permits[number].employer.credit_code
        assert employer in record.subjects
        # Both requests were counted all the same; one sync takes them to Redis.
        assert counters.unsent >= 2
        assert await counters.sync()
        assert await hub.hub.kv.get(f"rate:{CLIENT}:10") == b"2"
