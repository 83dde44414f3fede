"""With the hub database down, the token endpoint and the bearer path answer 503, never 500.

The outage is real (`tests.services.database_outage`: PostgreSQL refuses connections and its
sessions are killed; SQLite is locked by another connection). A client the instance has not
looked up yet makes the bearer path ask the registry, as any client does once the 5-second
client cache expires. Each refusal is a 503 with Retry-After and a one-line log, without a
stack trace; once the database is back, the same requests are answered.
"""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest

from tests.conftest import Simulators, open_hub
from tests.services import database_outage

QUERY = "query($n: ID!) { permit(number: $n) { status } }"


async def test_a_database_outage_is_a_503_with_retry_after_not_a_500(
    simulators: Simulators, database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with open_hub(simulators, database_url, tmp_path) as hub:
        # Issued before the outage, never presented to this instance: not in its client cache.
        token = await hub.token("si-agency-wuhan")
        permit = simulators.dataset.samples["valid_permit"]

        async def ask() -> httpx.Response:
            return await hub.http.post(
                "/graphql", json={"query": QUERY, "variables": {"n": permit}},
                headers={"authorization": f"Bearer {token}", "x-purpose-of-use": "benefit-check"},
            )

        async def new_token() -> httpx.Response:
            return await hub.http.post(
                "/oauth/token", data={"grant_type": "client_credentials"},
                auth=("exit-entry-wuhan", hub.secrets["exit-entry-wuhan"]),
            )

        caplog.clear()
        with caplog.at_level(logging.INFO):
            async with database_outage(database_url):
                during = [await new_token(), await ask()]
        after = [await new_token(), await ask()]

    for response in during:
        assert response.status_code == 503, response.text
        assert response.headers["retry-after"] == "1"
        assert "access_token" not in response.text and "data" not in response.json()
    assert during[0].json()["error"] == "temporarily_unavailable"
    assert during[1].json()["errors"][0]["extensions"]["code"] in (
        "UPSTREAM_UNAVAILABLE", "INTERNAL"  # SQLite: the audit record, not the lookup, fails
    )
    assert [r.status_code for r in after] == [200, 200]
    assert not [r for r in caplog.records if r.exc_info or "Traceback" in r.getMessage()]
    assert caplog.records, "each refusal is logged"
