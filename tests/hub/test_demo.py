"""`hub demo` as a newcomer runs it: samples.json names what exists, also after a restart."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

PROJECT = Path(__file__).resolve().parents[2]
ENROLL = """mutation($i: RegisterEnrollmentInput!) {
  registerEnrollment(input: $i) { enrollment { ssn } created } }"""
HOLDER = "query($n: ID!) { permit(number: $n) { holder { name nationality } } }"
AGENCY_OF = {"420100": "si-agency-wuhan", "420500": "si-agency-yichang"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@asynccontextmanager
async def _demo(data: Path) -> AsyncIterator[str]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hub", "demo", "--port", str(port), "--data-dir", str(data),
        "--foreigners", "400", cwd=PROJECT, env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            for _ in range(600):
                if (data / "demo" / "clients.json").exists():
                    try:
                        if (await client.get("/healthz")).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("hub demo did not start")
        yield url
    finally:
        process.terminate()
        await process.wait()


@asynccontextmanager
async def _as(url: str, data: Path, client_id: str) -> AsyncIterator[httpx.AsyncClient]:
    clients = json.loads((data / "demo" / "clients.json").read_text())
    secret = next(c["client_secret"] for c in clients if c["client_id"] == client_id)
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        token = (await http.post("/oauth/token", data={"grant_type": "client_credentials"},
                                 auth=(client_id, secret))).json()["access_token"]
        http.headers["authorization"] = f"Bearer {token}"
        yield http


async def _graphql(http: httpx.AsyncClient, purpose: str, query: str, **variables: Any) -> Any:
    response = await http.post("/graphql", json={"query": query, "variables": variables},
                               headers={"x-purpose-of-use": purpose})
    body = response.json()
    assert "errors" not in body, body
    return body["data"]


async def test_the_unenrolled_sample_is_unenrolled_again_after_a_restart(tmp_path: Path) -> None:
    data = tmp_path / "var"
    async with _demo(data) as url:
        samples = json.loads((data / "demo" / "samples.json").read_text())
        first = samples["unenrolled_valid_permit"]
        region = first[:6]
        async with _as(url, data, AGENCY_OF[region]) as agency:
            purpose = "social-insurance-enrollment"
            holder = (await _graphql(agency, purpose, HOLDER, n=first))["permit"]["holder"]
            enrolled = await _graphql(agency, purpose, ENROLL, i={
                "permitNumber": first, "region": region, "name": holder["name"],
                "nationality": holder["nationality"], "idempotencyKey": "newcomer-0001",
            })
        assert enrolled["registerEnrollment"]["created"] is True

    async with _demo(data):
        again = json.loads((data / "demo" / "samples.json").read_text())
    assert again["unenrolled_valid_permit"] != first
    assert again["enrolled_permit"] == samples["enrolled_permit"]


async def test_the_samples_name_cards_in_several_states_and_an_employer_with_employees(
    tmp_path: Path,
) -> None:
    data = tmp_path / "var"
    async with _demo(data) as url:
        samples = json.loads((data / "demo" / "samples.json").read_text())
        async with _as(url, data, "ssc-card-center-hubei") as center:
            ssn_query = "query($s: ID!) { cards(ssn: $s) { cardNumber status } }"
            states = {}
            for key in ("card_active", "card_in_production", "card_reported_lost"):
                assert key in samples, sorted(samples)
                states[key] = samples[key]
            ssns = samples["employer_employee_ssns"].split()
            assert 2 <= len(ssns) <= 5
            for ssn in ssns:
                cards = await _graphql(center, "card-issuance", ssn_query, s=ssn)
                assert cards["cards"] == []  # ready for the employer's batch application
    assert len(set(states.values())) == 3
    assert len(samples["employer_with_employees"]) == 18
