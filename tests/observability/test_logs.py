"""Logs are JSON with the request's trace and client ids, and never hold a secret or a token."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from observability.logs import _SECRETS, JsonFormatter, _might_hold_secret, redact
from tests.conftest import HubClient, Simulators, open_hub


def test_redact_masks_tokens_secrets_and_identity_numbers() -> None:
    line = redact(
        "Authorization: Bearer abc.def.ghi token eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln "
        "client_secret=hunter2 permit 420100202400123457 ssn 42050000000000042X"
    )
    for secret in (
        "abc.def.ghi",
        "eyJhbGciOiJFUzI1NiJ9",
        "hunter2",
        "420100202400123457",
        "42050000000000042X",
    ):
        assert secret not in line
    assert "420100…" in line  # the region prefix stays, for operators


# Pieces of every pattern, their near misses, and the characters regex case folding treats
# as letters of them (the long s, the Kelvin sign, dotted and dotless i).
_PIECES = st.sampled_from([
    "Bearer ", "bEaReR\t", "bearer", "bearer\u00a0", "eyJ", "eyj", "EYJ", "abcdefgh.", "x.y",
    "secret=", "SECRET=", "client_secret=", "password=", "PassWord=", "\u017fecret=",
    "pa\u017f\u017fword=", "PA\u017fSWORD=", "420100", "20240012345", "12345678",
    "42010020240012", "7", "X", "x", " ", "=", ".", "\u212a", "\u0130", "\u0131", "\u0663",
    "é", "…",
])


@given(st.lists(_PIECES | st.text(max_size=4), max_size=12).map("".join))
def test_the_quick_check_never_passes_a_line_a_pattern_would_mask(text: str) -> None:
    if any(pattern.search(text) for pattern, _ in _SECRETS):
        assert _might_hold_secret(text)


async def test_request_logs_are_json_with_trace_and_client_and_no_secrets(
    hub: HubClient, simulators: Simulators, caplog: pytest.LogCaptureFixture
) -> None:
    number = simulators.dataset.samples["valid_permit"]
    caplog.set_level(logging.DEBUG)
    token = await hub.token("exit-entry-wuhan")
    await hub.graphql(
        "exit-entry-wuhan", "query($n: ID!) { permit(number: $n) { status } }", {"n": number}
    )
    logging.getLogger("hub.test").warning("permit %s seen with Bearer %s", number, token)
    lines = [JsonFormatter().format(r) for r in caplog.records]
    assert lines
    entries = [json.loads(line) for line in lines]
    ours = entries[-1]
    assert ours["level"] == "warning" and len(ours["trace_id"]) == 32
    assert ours["client_id"] == "exit-entry-wuhan"
    text = "\n".join(lines)
    for secret in (token, hub.secrets["exit-entry-wuhan"], number):
        assert secret not in text


async def test_with_the_request_log_on_each_request_is_one_line_naming_its_client(
    simulators: Simulators, database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    number = simulators.dataset.samples["valid_permit"]
    caplog.set_level(logging.INFO, logger="hub.requests")
    async with open_hub(simulators, database_url, tmp_path, request_log=True) as hub:
        await hub.graphql(
            "exit-entry-wuhan", "query($n: ID!) { permit(number: $n) { status } }", {"n": number}
        )
        await hub.http.post("/graphql", json={"query": "{ __typename }"})  # no token
    lines = [r.getMessage() for r in caplog.records if r.name == "hub.requests"]
    # The token request, the admitted query, the refused one: method, path, status, client, time.
    assert [line.rsplit(" ", 2)[0] for line in lines] == [
        "POST /oauth/token 200 -",
        "POST /graphql 200 exit-entry-wuhan",
        "POST /graphql 401 -",
    ]
    assert all(line.endswith(" ms") for line in lines)
    assert number not in "\n".join(lines)


async def test_without_the_request_log_requests_are_not_logged_one_by_one(
    hub: HubClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="hub.requests")
    await hub.http.post("/graphql", json={"query": "{ __typename }"})
    assert [r for r in caplog.records if r.name == "hub.requests"] == []
