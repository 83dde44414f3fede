"""A real Apollo Gateway (npm, pinned by `node/package-lock.json`) in front of the hub.

The gateway composes the hub's subgraph SDL (`hub schema export --federation`) with a small
residence-permit subgraph of public security whose `ResidencePermit.workPermit` references the
hub's `WorkPermit` by number, and forwards `Authorization`, `X-Purpose-Of-Use` and a
`traceparent` of its own fetch span. Everything the hub guarantees holds through it: a join
answers, scopes and jurisdiction refuse, the audit record names the token's client and carries
the gateway's trace. Skipped only where `node`/`npm` is missing (failed instead under CI=true).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from observability.audit import AuditFilter
from schema import subgraph_sdl
from tests.conftest import Simulators, _drop_prefix
from tests.faults.conftest import free_port
from tests.hub.test_events import LiveHub, _live_hub
from tests.services import fresh_database

NODE_DIR = Path(__file__).parent / "node"
WUHAN = "exit-entry-wuhan"
PURPOSE = "residence-permit-check"


def _node_or_skip() -> tuple[str, str]:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        reason = "the gateway tests need node and npm (Node 20+), which are not installed"
        if os.environ.get("CI") == "true":
            pytest.fail(reason + " (CI has them)")
        pytest.skip(reason)
    return node, npm


def _npm_ci(npm: str) -> None:
    """`npm ci` unless every dependency of package.json is installed already."""
    wanted = json.loads((NODE_DIR / "package.json").read_text())["dependencies"]
    if all((NODE_DIR / "node_modules" / name / "package.json").is_file() for name in wanted):
        return
    done = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, capture_output=True, text=True,
        timeout=600, check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]


@asynccontextmanager
async def _node(node: str, script: str, *args: str, log: Path) -> AsyncIterator[None]:
    """Run `node script args` until it prints its ready line; stopped (by its id) on exit."""
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            node, script, *args, cwd=NODE_DIR, stdout=asyncio.subprocess.PIPE, stderr=out,
        )
        drain: asyncio.Task[None] | None = None
        try:
            assert process.stdout is not None
            stdout = process.stdout
            line = b""
            while b"ready at" not in line:
                line = await asyncio.wait_for(stdout.readline(), timeout=60)
                assert line, f"{script} exited before it was ready: see {log}"

            async def _drain() -> None:  # a full pipe would block the child
                while await stdout.readline():
                    pass

            drain = asyncio.create_task(_drain())
            yield
        finally:
            if process.returncode is None:
                process.terminate()
                await process.wait()
            if drain is not None:
                await drain


@dataclass
class Gateway:
    url: str
    hub: LiveHub
    spans: Path
    wuhan_permit: str
    yichang_permit: str

    async def query(
        self, query: str, *, client_id: str = WUHAN, purpose: str = PURPOSE
    ) -> dict[str, Any]:
        headers = {
            "authorization": f"Bearer {await self.hub.token(client_id)}",
            "x-purpose-of-use": purpose,
        }
        response = await self.hub.http.post(self.url, json={"query": query}, headers=headers)
        body: dict[str, Any] = response.json()
        return body

    def trace_ids(self) -> set[str]:
        return {json.loads(line)["traceId"] for line in self.spans.read_text().splitlines()}

    def spans_of(self, trace_id: str | None) -> list[dict[str, Any]]:
        spans = [json.loads(line) for line in self.spans.read_text().splitlines()]
        return [s for s in spans if s["traceId"] == trace_id]


@pytest.fixture(scope="module")
async def gateway(
    simulators: Simulators, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Gateway]:
    node, npm = _node_or_skip()
    _npm_ci(npm)
    tmp = tmp_path_factory.mktemp("gateway")
    permits = sorted(simulators.dataset.permits)
    wuhan = next(n for n in permits if n.startswith("420100"))
    yichang = next(n for n in permits if n.startswith("420500"))
    (tmp / "residence.json").write_text(json.dumps([
        {"number": "RP-WUHAN-1", "workPermit": wuhan},
        {"number": "RP-YICHANG-1", "workPermit": yichang},
    ]))
    (tmp / "hub.graphql").write_text(subgraph_sdl())
    spans = tmp / "spans.jsonl"
    spans.touch()
    prefix = f"test:{uuid.uuid4().hex[:12]}:"
    try:
        async with AsyncExitStack() as stack:
            url = await stack.enter_async_context(fresh_database(tmp))
            hub = await stack.enter_async_context(_live_hub(simulators, url, tmp, prefix))
            residence_port, gateway_port = free_port(), free_port()
            await stack.enter_async_context(_node(
                node, "residence.mjs", str(residence_port), str(tmp / "residence.json"),
                log=tmp / "residence.log",
            ))
            await stack.enter_async_context(_node(
                node, "gateway.mjs", str(gateway_port), hub.url + "/graphql",
                str(tmp / "hub.graphql"), f"http://127.0.0.1:{residence_port}/", str(spans),
                log=tmp / "gateway.log",
            ))
            yield Gateway(f"http://127.0.0.1:{gateway_port}/", hub, spans, wuhan, yichang)
    finally:
        await _drop_prefix(prefix)


JOIN = """{ residencePermit(number: "RP-WUHAN-1") {
  number validUntil workPermit { number status isValid } } }"""


async def test_a_query_joins_the_residence_subgraph_and_the_hub(gateway: Gateway) -> None:
    body = await gateway.query(JOIN)
    assert "errors" not in body, body
    permit = body["data"]["residencePermit"]
    assert permit["number"] == "RP-WUHAN-1"
    assert permit["workPermit"]["number"] == gateway.wuhan_permit
    assert permit["workPermit"]["status"] in {"VALID", "EXPIRED", "REVOKED", "SUSPENDED",
                                              "CANCELLED"}


async def test_a_field_outside_the_clients_scopes_is_refused_through_the_gateway(
    gateway: Gateway,
) -> None:
    body = await gateway.query(
        '{ residencePermit(number: "RP-WUHAN-1") { workPermit { number position } } }'
    )
    assert body["data"]["residencePermit"] is None
    assert "FORBIDDEN" in {e["extensions"].get("code") for e in body["errors"]}


async def test_an_entity_outside_the_jurisdiction_is_refused_through_the_gateway(
    gateway: Gateway,
) -> None:
    inside = await gateway.query(
        '{ residencePermit(number: "RP-WUHAN-1") { workPermit { holder { name } } } }'
    )
    assert inside["data"]["residencePermit"]["workPermit"]["holder"]["name"], inside
    body = await gateway.query(
        '{ residencePermit(number: "RP-YICHANG-1") { number workPermit { holder { name } } } }'
    )
    assert body["data"]["residencePermit"] is None
    reasons = {e["extensions"].get("reason") for e in body["errors"]}
    assert "OUT_OF_JURISDICTION" in reasons, body


async def test_the_hubs_audit_record_names_the_client_in_the_gateways_trace(
    gateway: Gateway,
) -> None:
    before = gateway.trace_ids()
    body = await gateway.query(JOIN)
    assert "errors" not in body, body
    page = await gateway.hub.hub.audit.search(
        AuditFilter(subject=gateway.wuhan_permit), 500, None, subject_view=False,
        today=dt.date.today(),
    )
    record = max(page.records, key=lambda r: r.seq)
    assert record.client_id == WUHAN  # the token's client, not the gateway
    assert record.purpose == PURPOSE
    assert record.outcome == "OK"
    assert "Query._entities" in record.fields
    # One trace: the hub recorded the trace of the gateway's request that fetched from it.
    spans = gateway.spans_of(record.trace_id)
    assert record.trace_id not in before
    assert {"gateway.request", "gateway.fetch"} <= {s["name"] for s in spans}
