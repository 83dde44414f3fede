"""The administrative `hub` commands, run as an operator runs them: a separate process.

Each invocation costs about a second of imports, so state the commands only read (audit records,
evidence) is set up in-process through `admin_services`, the same services the commands open.
"""

from __future__ import annotations

import asyncio
import base64
import csv
import datetime as dt
import hashlib
import json
import os
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis.asyncio as redis_async
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from hub.admin import admin_services
from hub.demo_clients import seed_demo_clients
from hub.settings import Settings
from observability.audit import AuditEvent, AuditFilter
from tests.services import CHEAP_SECRET_HASH, CHEAP_SECRET_HASH_ENV, REDIS_URL

PROJECT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str


@dataclass(frozen=True)
class Cli:
    settings: Settings
    env: dict[str, str]

    async def __call__(self, *args: str, env: dict[str, str] | None = None) -> Run:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "hub",
            *args,
            cwd=PROJECT,
            env=env or self.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), timeout=60)
        assert process.returncode is not None
        run = Run(process.returncode, out.decode(), err.decode())
        assert "Traceback" not in run.err, run.err
        return run


@pytest.fixture
async def cli(database_url: str, tmp_path: Path) -> AsyncIterator[Cli]:
    """The `hub` command against a fresh hub database (and a private Redis prefix)."""
    prefix = f"test:{uuid.uuid4().hex[:12]}:"
    settings = Settings(
        database_url=database_url, redis_url=REDIS_URL, redis_prefix=prefix, data_dir=tmp_path,
        **CHEAP_SECRET_HASH,
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env |= {
        "HUB_DATABASE_URL": database_url,
        "HUB_DATA_DIR": str(tmp_path),
        "HUB_REDIS_PREFIX": prefix,
        **CHEAP_SECRET_HASH_ENV,
    }
    if REDIS_URL is not None:
        env["HUB_REDIS_URL"] = REDIS_URL
    try:
        yield Cli(settings, env)
    finally:
        if REDIS_URL is not None:
            client = redis_async.Redis.from_url(REDIS_URL)
            keys = [k async for k in client.scan_iter(match=prefix + "*", count=500)]
            if keys:
                await client.delete(*keys)
            await client.aclose()


def _claims(token: str) -> dict[str, object]:
    payload = token.split(".")[1]
    claims: dict[str, object] = json.loads(base64.urlsafe_b64decode(payload + "=" * 4))
    return claims


def _header(token: str) -> dict[str, object]:
    header: dict[str, object] = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "==="))
    return header


async def _write_records(settings: Settings, count: int) -> None:
    async with admin_services(settings) as hub:
        await hub.auth.purposes.add("benefits", ["permit"])  # no record of its own: counted
        await hub.auth.add_client("agency-a", "A", ["permit:validity"], ["benefits"])
        for i in range(count):
            await hub.audit.append(
                AuditEvent(
                    time=dt.datetime.now(dt.UTC),
                    kind="graphql",
                    outcome="OK",
                    client_id="agency-a",
                    operation=f"Q{i}",
                    subjects=(f"S{i}",),
                )
            )


async def test_clients_are_added_changed_disabled_and_listed_without_secrets(cli: Cli) -> None:
    assert (await cli("purposes", "add", "benefits", "--operations", "permit")).code == 0
    added = await cli(
        "clients",
        "add",
        "agency-a",
        "--agency",
        "A",
        "--scopes",
        "permit:validity card:status",
        "--purposes",
        "benefits",
        "--jurisdiction",
        "*",
    )
    assert added.code == 0, added.err
    secret = added.out.split("client_secret:")[1].strip()
    assert len(secret) >= 32

    refused = await cli("clients", "set-scopes", "agency-a", "permit:validity nope:x")
    assert refused.code == 2
    assert refused.err == "hub: error: unknown scopes: nope:x\n"

    changed = await cli("clients", "set-scopes", "agency-a", "card:read")
    disabled = await cli("clients", "disable", "agency-a")
    listed = await cli("clients", "list")
    assert (changed.code, disabled.code, listed.code) == (0, 0, 0)
    row = listed.out.splitlines()[1].split("\t")
    assert row[:5] == ["agency-a", "A", "client_secret", "disabled", "card:read"]
    assert secret not in listed.out and "argon2" not in listed.out


async def test_a_client_is_added_with_a_jurisdiction_listed_and_moved(cli: Cli) -> None:
    add = ("clients", "add", "si-a", "--agency", "A", "--scopes", "enrollment:read",
           "--purposes", "benefits")
    async with admin_services(cli.settings) as hub:
        await hub.auth.add_purpose("benefits", ["enrollment"])
    missing = await cli(*add)
    bad = await cli(*add, "--jurisdiction", "420100,hubei")
    added = await cli(*add, "--jurisdiction", "420100,42")
    assert (missing.code, missing.out) == (2, "")
    assert missing.err == "hub: error: a client needs --jurisdiction (e.g. 420100, 42 or *)\n"
    assert bad.code == 2 and "not a region prefix: hubei" in bad.err
    assert added.code == 0, added.err

    moved = await cli("clients", "set-jurisdiction", "si-a", "420500", "420600")
    refused = await cli("clients", "set-jurisdiction", "si-a", "*", "42")
    listed = await cli("clients", "list")
    assert moved.out == "si-a: jurisdiction 420500,420600\n"
    assert refused.code == 2 and "stands alone" in refused.err
    header, row = (line.split("\t") for line in listed.out.splitlines())
    assert dict(zip(header, row, strict=True))["jurisdiction"] == "420500,420600"
    async with admin_services(cli.settings) as hub:
        page = await hub.audit.search(AuditFilter(client_id="si-a"), subject_view=False,
                                      today=dt.date.today())
    # Added, then moved; the refused change recorded nothing.
    assert [(r.kind, r.operation) for r in page.records] == [("admin", "client_changed")] * 2


async def test_purposes_are_registered_with_their_operations_and_listed(cli: Cli) -> None:
    service = await cli("purposes", "add", "card-service", "--operations", "updateCardStatus cards")
    officer = await cli("purposes", "add", "investigation", "--operations", "permit,foreigner",
                        "--needs-officer")
    empty = await cli("purposes", "add", "notification", "--operations", "")
    assert (service.code, officer.code, empty.code) == (0, 0, 0), service.err + officer.err
    assert service.out == "card-service: cards updateCardStatus\n"
    assert "covers no operation" in empty.out

    typo = await cli("purposes", "add", "card-issuance", "--operations", "applyForCard cardz")
    again = await cli("purposes", "add", "card-service", "--operations", "cards")
    introspection = await cli("purposes", "set-operations", "card-service", "__schema")
    nobody = await cli("purposes", "set-operations", "no-such-purpose", "cards")
    assert (typo.code, typo.out) == (2, "")
    assert typo.err.startswith("hub: error: unknown operations: cardz (root fields: accessLog ")
    assert typo.err.count("\n") == 1
    assert again.code == 2 and "already exists" in again.err
    assert introspection.code == 2 and "unknown operations: __schema" in introspection.err
    assert nobody.code == 2 and nobody.err == "hub: error: no purpose 'no-such-purpose'\n"

    client = ("clients", "add", "ssc-a", "--agency", "A", "--scopes", "card:write",
              "--jurisdiction", "42", "--purposes")
    unknown = await cli(*client, "card-service card-issuance")
    added = await cli(*client, "card-service")
    narrowed = await cli("purposes", "set-operations", "card-service", "updateCardStatus")
    moved = await cli("clients", "set-purposes", "ssc-a", "card-issuance")
    listed = await cli("purposes", "list")
    assert unknown.code == 2
    assert unknown.err == (
        "hub: error: purposes not registered: card-issuance "
        "(register each first: hub purposes add NAME --operations ...)\n"
    )
    assert added.code == 0 and narrowed.code == 0, added.err + narrowed.err
    assert moved.code == 2 and "not registered: card-issuance" in moved.err
    assert listed.out.splitlines() == [
        "purpose        needs_officer  operations        clients",
        "card-service   no             updateCardStatus  ssc-a",
        "investigation  yes            foreigner permit  -",
        "notification   no             -                 -",
    ]
    async with admin_services(cli.settings) as hub:
        client_of = await hub.auth.get_client("ssc-a")
        page = await hub.audit.search(AuditFilter(operation="purpose_changed"),
                                      subject_view=False, today=dt.date.today())
    assert client_of.purpose_operations == {"card-service": frozenset({"updateCardStatus"})}
    # Three added and one narrowed, each an admin record; the refused changes recorded nothing.
    assert [(r.kind, r.purpose, r.fields) for r in page.records] == [
        ("admin", "card-service", ("updateCardStatus",)),
        ("admin", "notification", ()),
        ("admin", "investigation", ("foreigner", "permit")),
        ("admin", "card-service", ("cards", "updateCardStatus")),
    ]


async def test_purposes_named_by_clients_but_not_registered_are_listed_as_covering_nothing(
    cli: Cli,
) -> None:
    """What an operator sees after upgrading: clients registered before purposes covered
    operations name purposes the registry does not hold (migration 0006 seeds none)."""
    from sqlalchemy import insert

    from auth.models import clients

    async with admin_services(cli.settings) as hub:
        await hub.auth.add_purpose("audit", ["accessLog"])
        now = dt.datetime.now(dt.UTC)
        async with hub.engine.begin() as conn:  # as the registry held it before upgrading
            await conn.execute(insert(clients).values(
                client_id="old-agency", agency="Old", scopes="permit:validity",
                purposes="audit benefits", enabled=True, created_at=now, updated_at=now,
                jurisdiction="*",
            ))
    listed = await cli("purposes", "list")
    assert listed.code == 0, listed.err
    assert listed.out.splitlines() == [
        "purpose   needs_officer  operations                        clients",
        "audit     no             accessLog                         old-agency",
        "benefits  -              (not registered: covers nothing)  old-agency",
    ]


async def test_the_demo_clients_carry_their_jurisdiction(cli: Cli) -> None:
    async with admin_services(cli.settings) as hub:
        seeded = await seed_demo_clients(hub.auth)
        registered = {c.client_id: c.jurisdiction for c in await hub.auth.list_clients()}
    written = {str(c["client_id"]): c["jurisdiction"] for c in seeded}
    assert written == {
        "exit-entry-wuhan": ["420100"], "si-agency-wuhan": ["420100"],
        "si-agency-yichang": ["420500"], "ssc-card-center-hubei": ["42"],
        "auditor-hubei": ["*"], "wms": ["*"],
    }
    assert {k: list(v) for k, v in registered.items()} == written


async def test_a_token_is_issued_for_a_client_and_rotated_keys_are_published(cli: Cli) -> None:
    async with admin_services(cli.settings) as hub:
        await hub.auth.add_purpose("x", ["cards"])
        await hub.auth.add_client("agency-a", "A", ["permit:validity", "card:status"], ["x"])

    token = await cli("token", "--client", "agency-a", "--scope", "card:status")
    rotated = await cli("keys", "rotate")
    listed = await cli("keys", "list")
    assert (token.code, rotated.code, listed.code) == (0, 0, 0), token.err + rotated.err
    claims = _claims(token.out.strip())
    assert claims["client_id"] == "agency-a" and claims["scope"] == "card:status"
    kids = [key["kid"] for key in json.loads(listed.out)["keys"]]
    assert rotated.out.strip() in kids
    assert _header(token.out.strip())["kid"] in kids  # the old key stays published
    assert all("d" not in key for key in json.loads(listed.out)["keys"])


async def test_audit_verify_passes_an_untouched_log_and_names_a_tampered_record(
    cli: Cli, database_url: str
) -> None:
    await _write_records(cli.settings, 4)
    untouched = await cli("audit", "verify")
    assert untouched.code == 0, untouched.err
    assert untouched.out.startswith("ok: 5 records, ")

    tamperer = create_async_engine(database_url)
    async with tamperer.begin() as conn:
        await conn.execute(text("UPDATE audit_records SET operation = 'Q9' WHERE seq = 3"))
    await tamperer.dispose()

    tampered = await cli("audit", "verify")
    assert tampered.code == 1
    assert "seq 3" in tampered.out


async def test_audit_exports_as_json_lines_and_csv(cli: Cli, tmp_path: Path) -> None:
    await _write_records(cli.settings, 3)
    jsonl = await cli("audit", "export", "--format", "jsonl")
    as_csv = await cli("audit", "export", "--format", "csv", "--output", str(tmp_path / "a.csv"))
    assert (jsonl.code, as_csv.code) == (0, 0), jsonl.err + as_csv.err
    exported = [json.loads(line) for line in jsonl.out.splitlines()]
    assert [r["seq"] for r in exported] == [1, 2, 3, 4]
    assert [r["operation"] for r in exported[1:]] == ["Q0", "Q1", "Q2"]
    with (tmp_path / "a.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    # The first export is itself a read of the log, recorded before the second one ran.
    assert [row["hash"] for row in rows[:4]] == [r["hash"] for r in exported]
    assert rows[4]["kind"] == "audit_read"


async def test_evidence_checks_offline_against_the_proof_and_fails_for_a_changed_byte(
    cli: Cli, tmp_path: Path
) -> None:
    body = b'{"data":{"permit":{"status":"VALID"}}}'
    async with admin_services(cli.settings) as hub:
        stored = await hub.audit.append_with_evidence(
            AuditEvent(
                time=dt.datetime.now(dt.UTC),
                kind="graphql",
                outcome="OK",
                client_id="agency-a",
                response_sha256=hashlib.sha256(body).hexdigest(),
            ),
            body,
        )
        record, evidence = stored.record, stored.evidence
        jwks = hub.auth.jwks()
    (tmp_path / "body.json").write_bytes(body)
    (tmp_path / "changed.json").write_bytes(body.replace(b"VALID", b"VALIE"))
    (tmp_path / "evidence.txt").write_text(evidence + "\n")
    (tmp_path / "jwks.json").write_text(json.dumps(jwks))

    proved = await cli("audit", "prove", record.id, "--output", str(tmp_path / "proof.json"))
    assert proved.code == 0, proved.err
    assert json.loads((tmp_path / "proof.json").read_text())["jwks"] == jwks

    offline = {**cli.env, "HUB_DATABASE_URL": "postgresql+asyncpg://nobody@127.0.0.1:1/none"}
    check = ("audit", "check-evidence", "--evidence")
    with_jwks, with_proof, changed = await asyncio.gather(  # offline, so side by side
        cli(
            *check,
            evidence,
            "--body",
            str(tmp_path / "body.json"),
            "--jwks",
            str(tmp_path / "jwks.json"),
            env=offline,
        ),
        cli(
            *check,
            f"@{tmp_path / 'evidence.txt'}",
            "--body",
            str(tmp_path / "body.json"),
            "--jwks",
            str(tmp_path / "proof.json"),
            "--proof",
            str(tmp_path / "proof.json"),
            env=offline,
        ),
        cli(
            *check,
            f"@{tmp_path / 'evidence.txt'}",
            "--body",
            str(tmp_path / "changed.json"),
            "--jwks",
            str(tmp_path / "proof.json"),
            env=offline,
        ),
    )
    digest = hashlib.sha256(body).hexdigest()
    assert with_jwks.code == 0, with_jwks.out + with_jwks.err
    assert with_jwks.out.startswith(f"evidence ok: record {record.id}, body sha256 {digest}")
    assert with_proof.code == 0, with_proof.out + with_proof.err
    assert "checkpoint seq" in with_proof.out
    assert changed.code == 1
    assert "the body differs from the one the hub signed" in changed.out
