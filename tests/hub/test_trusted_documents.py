"""Issue 6, items 4 and 5: trusted documents and the per-client request rate.

With HUB_TRUSTED_DOCUMENTS=enforce a client runs only the documents registered for it, named by
`documentId`, by the persisted-query extension, or sent whole; anything else is refused before
parsing, audited, and reaches no source system.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hub.documents import document_id_of
from observability.audit import AuditFilter
from tests.conftest import HubClient, Simulators, open_hub, purpose_for
from tests.hub.test_cli import Cli, cli  # noqa: F401 (the fixture)

STATUS = "query Status($n: ID!) { permit(number: $n) { number status } }"
HOLDER = "query Holder($n: ID!) { permit(number: $n) { holder { name } } }"
CLIENT = "exit-entry-wuhan"


@pytest.fixture
async def strict(
    simulators: Simulators, database_url: str, tmp_path: Path
) -> AsyncIterator[HubClient]:
    """A hub enforcing trusted documents, with one document registered for CLIENT."""
    async with open_hub(
        simulators, database_url, tmp_path, trusted_documents="enforce"
    ) as client:
        await client.hub.documents.add(CLIENT, STATUS, "status.graphql")
        yield client


async def _post(hub: HubClient, body: dict[str, Any], client_id: str = CLIENT) -> httpx.Response:
    return await hub.http.post(
        "/graphql",
        json=body,
        headers={
            "authorization": f"Bearer {await hub.token(client_id)}",
            "x-purpose-of-use": purpose_for(client_id, str(body.get("query") or STATUS)),
        },
    )


def _number(simulators: Simulators) -> str:
    # A Wuhan permit: CLIENT reads its holder, which its jurisdiction ("420100") binds.
    return next(n for n in sorted(simulators.dataset.permits) if n.startswith("420100"))


async def test_a_registered_document_runs_by_id_by_extension_or_whole(
    strict: HubClient, simulators: Simulators
) -> None:
    variables = {"n": _number(simulators)}
    digest = document_id_of(STATUS)
    bodies: list[dict[str, Any]] = [
        {"documentId": f"sha256:{digest}", "variables": variables},
        {"documentId": digest, "variables": variables},
        {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": digest}},
         "variables": variables},
        {"query": STATUS, "variables": variables},
    ]
    for body in bodies:
        response = await _post(strict, body)
        assert response.status_code == 200, (body, response.text)
        assert response.json()["data"]["permit"]["number"] == variables["n"]


async def test_anything_else_is_refused_before_parsing_audited_and_never_sent_upstream(
    strict: HubClient, simulators: Simulators
) -> None:
    variables = {"n": _number(simulators)}
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"query": HOLDER, "variables": variables}, 403, "FORBIDDEN"),
        ({"query": "{ permit(number: ", "variables": variables}, 403, "FORBIDDEN"),  # unparsable
        ({"query": STATUS + " ", "variables": variables}, 403, "FORBIDDEN"),  # another text
        ({"documentId": document_id_of(HOLDER), "variables": variables}, 400, "BAD_USER_INPUT"),
        ({"documentId": "sha256:abc"}, 400, "BAD_USER_INPUT"),
        ({"documentId": document_id_of(STATUS), "query": HOLDER}, 400, "BAD_USER_INPUT"),
        ({"extensions": {"persistedQuery": {"version": 2,
                                            "sha256Hash": document_id_of(STATUS)}}},
         400, "BAD_USER_INPUT"),
    ]
    await simulators.reset()
    for body, status, code in cases:
        response = await _post(strict, body)
        assert response.status_code == status, (body, response.text)
        assert response.json()["errors"][0]["extensions"]["code"] == code
    assert await simulators.upstream_calls() == 0
    page = await strict.hub.audit.search(
        AuditFilter(client_id=CLIENT), 100, None, subject_view=False, today=dt.date.today()
    )
    refused = [r for r in page.records if r.kind == "graphql"]
    assert sorted(r.error_codes[0] for r in refused) == sorted(code for _, _, code in cases)


async def test_documents_are_trusted_per_client(strict: HubClient, simulators: Simulators) -> None:
    """The card centre may read permit status too, but STATUS is not on its list."""
    response = await _post(
        strict, {"documentId": document_id_of(STATUS), "variables": {"n": _number(simulators)}},
        client_id="ssc-card-center-hubei",
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_in_allow_mode_ids_resolve_and_other_documents_still_run(
    hub: HubClient, simulators: Simulators
) -> None:
    await hub.hub.documents.add(CLIENT, STATUS)
    number = _number(simulators)
    by_id = await _post(hub, {"documentId": document_id_of(STATUS), "variables": {"n": number}})
    other = await _post(hub, {"query": HOLDER, "variables": {"n": number}})
    assert by_id.status_code == 200 and by_id.json()["data"]["permit"]["number"] == number
    assert other.status_code == 200 and other.json()["data"]["permit"]["holder"]["name"]


async def test_the_command_line_registers_lists_and_removes_documents(
    cli: Cli,  # noqa: F811 (the fixture imported above)
    tmp_path: Path,
) -> None:
    from hub.admin import admin_services

    async with admin_services(cli.settings) as admin:
        await admin.auth.add_purpose("check", ["permit"])
        await admin.auth.add_client(CLIENT, "Exit-entry", ["permit:validity"], ["check"])
    document = tmp_path / "status.graphql"
    document.write_text(STATUS, encoding="utf-8")
    broken = tmp_path / "broken.graphql"
    broken.write_text("{ permit(", encoding="utf-8")

    added = await cli("documents", "add", "--client", CLIENT, str(document))
    again = await cli("documents", "add", "--client", CLIENT, str(document))
    listed = await cli("documents", "list", "--client", CLIENT)
    bad = await cli("documents", "add", "--client", CLIENT, str(broken))
    nobody = await cli("documents", "add", "--client", "no-such-client", str(document))

    digest = document_id_of(STATUS)
    assert added.code == 0 and added.out.startswith(f"sha256:{digest}")
    assert again.code == 0  # registering twice is harmless
    assert listed.out.count(digest) == 1 and "status.graphql" in listed.out
    assert bad.code != 0 and "not a GraphQL document" in bad.err
    assert nobody.code != 0
    removed = await cli("documents", "remove", "--client", CLIENT, f"sha256:{digest}")
    assert removed.code == 0
    assert digest not in (await cli("documents", "list", "--client", CLIENT)).out


# -- request rate --------------------------------------------------------------------------------


async def test_a_client_over_its_request_rate_gets_429_with_retry_after(
    simulators: Simulators, database_url: str, tmp_path: Path
) -> None:
    async with open_hub(simulators, database_url, tmp_path, rate_limit_per_minute=5) as client:
        variables = {"n": _number(simulators)}
        body = {"query": STATUS, "variables": variables}
        # 12 requests span at most two one-minute windows: at most 10 can pass.
        responses = [await _post(client, body) for _ in range(12)]
        other = await client.graphql("si-agency-wuhan", STATUS, variables)
    codes = [r.status_code for r in responses]
    assert set(codes) == {200, 429} and codes.count(200) <= 10
    refused = next(r for r in responses if r.status_code == 429)
    assert refused.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert other.status_code == 200  # another client is not slowed by this one
