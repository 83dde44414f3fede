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
from joserfc.jwk import ECKey
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

    @property
    def error(self) -> str:
        """Standard error without the line naming the database the command opened."""
        return "".join(
            line for line in self.err.splitlines(keepends=True)
            if not line.startswith("hub: database: ")
        )


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
    async with admin_services(settings):
        pass  # the hub database exists (commands refuse a missing one), migrated
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
    assert refused.error == "hub: error: unknown scopes: nope:x\n"

    changed = await cli("clients", "set-scopes", "agency-a", "card:read")
    disabled = await cli("clients", "disable", "agency-a")
    listed = await cli("clients", "list", "--tsv")
    assert (changed.code, disabled.code, listed.code) == (0, 0, 0)
    header, row = (line.split("\t") for line in listed.out.splitlines())
    listing = dict(zip(header, row, strict=True))
    assert [listing[k] for k in ("client_id", "agency", "auth", "status", "scopes")] == [
        "agency-a", "A", "client_secret", "disabled", "card:read"]
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
    assert missing.error == "hub: error: a client needs --jurisdiction (e.g. 420100, 42 or *)\n"
    assert bad.code == 2 and "not a region prefix: hubei" in bad.err
    assert added.code == 0, added.err

    moved = await cli("clients", "set-jurisdiction", "si-a", "420500", "420600")
    refused = await cli("clients", "set-jurisdiction", "si-a", "*", "42")
    listed = await cli("clients", "list", "--tsv")
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
    assert typo.error.startswith("hub: error: unknown operations: cardz (root fields: accessLog ")
    assert typo.error.count("\n") == 1
    assert again.code == 2 and "already exists" in again.err
    assert introspection.code == 2 and "unknown operations: __schema" in introspection.err
    assert nobody.code == 2 and nobody.error == "hub: error: no purpose 'no-such-purpose'\n"

    client = ("clients", "add", "ssc-a", "--agency", "A", "--scopes", "card:write",
              "--jurisdiction", "42", "--purposes")
    unknown = await cli(*client, "card-service card-issuance")
    added = await cli(*client, "card-service")
    narrowed = await cli("purposes", "set-operations", "card-service", "updateCardStatus")
    moved = await cli("clients", "set-purposes", "ssc-a", "card-issuance")
    listed = await cli("purposes", "list")
    assert unknown.code == 2
    assert unknown.error == (
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
        "auditor-hubei": ["*"], "wms": ["*"], "essc-app": ["*"],
    }
    assert {k: list(v) for k, v in registered.items()} == written


async def test_identity_providers_are_added_listed_refused_and_removed(
    cli: Cli, tmp_path: Path
) -> None:
    async with admin_services(cli.settings) as hub:
        await hub.auth.add_purpose("benefits", ["permit"])
        await hub.auth.add_purpose("self-service", [])
        await hub.auth.add_client("agency-a", "A", ["permit:validity", "permit:holder"],
                                  ["benefits"])
        await hub.auth.add_client("app-a", "App", ["self:read"], ["self-service"])
    key = ECKey.generate_key("P-256", {"kid": "idp-1", "alg": "ES256"}, private=True)
    jwks = tmp_path / "idp.json"
    jwks.write_text(json.dumps({"keys": [key.as_dict(private=False)]}))
    officers = ("clients", "add-idp", "agency-a", "--issuer", "https://idp.agency-a.test",
                "--kind", "officer",
                "--roles", "officer=permit:validity,permit:holder clerk=permit:validity")

    added = await cli(*officers, "--jwks-file", str(jwks))
    again = await cli(*officers, "--jwks-file", str(jwks))
    person_scope = await cli("clients", "add-idp", "agency-a", "--issuer", "https://x.test",
                             "--jwks-url", "https://x.test/jwks", "--kind", "officer",
                             "--roles", "officer=self:read")
    agency_scope = await cli("clients", "add-idp", "app-a", "--issuer", "https://v.test",
                             "--jwks-url", "https://v.test/jwks", "--kind", "subject",
                             "--roles", "person=self:read,permit:holder")
    plain_http = await cli("clients", "add-idp", "app-a", "--issuer", "http://v.example",
                           "--jwks-url", "http://v.example/jwks", "--kind", "subject",
                           "--roles", "person=self:read")
    subject = await cli("clients", "add-idp", "app-a", "--issuer", "https://v.test",
                        "--jwks-url", "https://v.test/jwks", "--kind", "subject",
                        "--roles", "person=self:read")
    listed = await cli("clients", "idps")
    own_token = await cli("token", "--client", "app-a")

    assert (added.code, subject.code, listed.code) == (0, 0, 0), added.err + subject.err
    assert added.out == "agency-a: trusts https://idp.agency-a.test (officer)\n"
    assert again.code == 2 and "already trusts" in again.err
    assert person_scope.code == 2 and "only from a subject provider" in person_scope.err
    assert agency_scope.code == 2 and "not permit:holder" in agency_scope.err
    assert plain_http.code == 2 and "https URL" in plain_http.err
    assert listed.out.splitlines()[1:] == [
        "agency-a\thttps://idp.agency-a.test\tofficer\tregistered JWKS"
        "\tclerk=permit:validity officer=permit:holder,permit:validity",
        "app-a\thttps://v.test\tsubject\thttps://v.test/jwks\tperson=self:read",
    ]
    assert own_token.code == 2 and "no such scope for a token of its own" in own_token.err

    removed = await cli("clients", "remove-idp", "agency-a", "--issuer", "https://idp.agency-a.test")
    gone = await cli("clients", "remove-idp", "agency-a", "--issuer", "https://idp.agency-a.test")
    assert removed.code == 0 and gone.code == 2
    assert (await cli("clients", "idps", "agency-a")).out.count("\n") == 1  # the header only


async def test_a_token_is_issued_for_a_client_and_rotated_keys_are_published(cli: Cli) -> None:
    async with admin_services(cli.settings) as hub:
        await hub.auth.add_purpose("x", ["cards"])
        await hub.auth.add_client("agency-a", "A", ["permit:validity", "card:status"], ["x"])

    token = await cli("token", "--client", "agency-a", "--scope", "card:status")
    rotated = await cli("keys", "rotate")
    listed = await cli("keys", "list", "--jwks")
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


# -- what a newcomer runs into: one line saying what and what to do, never a traceback ------------


async def test_a_command_run_where_there_is_no_hub_database_refuses_and_creates_nothing(
    cli: Cli, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in cli.env.items() if k not in ("HUB_DATABASE_URL", "HUB_DATA_DIR")}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hub", "audit", "verify", cwd=elsewhere, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 2 and out == b""
    lines = err.decode().splitlines()
    assert lines[0] == f"hub: database: {elsewhere / 'var' / 'hub.db'} (SQLite)"
    assert lines[1].startswith(f"hub: error: no hub database at {elsewhere / 'var' / 'hub.db'}")
    assert "hub database init" in lines[1]
    assert list(elsewhere.iterdir()) == []  # no empty var/ left behind


async def test_database_init_creates_the_database_the_other_commands_then_use(
    cli: Cli, tmp_path: Path
) -> None:
    fresh = tmp_path / "fresh" / "hub.db"
    env = cli.env | {"HUB_DATABASE_URL": f"sqlite+aiosqlite:///{fresh}",
                     "HUB_DATA_DIR": str(fresh.parent)}
    before = await cli("clients", "list", env=env)
    made = await cli("database", "init", env=env)
    after = await cli("clients", "list", env=env)
    assert before.code == 2 and made.code == 0 and after.code == 0, made.err
    assert fresh.is_file()
    assert after.out.split() == ["client_id", "agency", "auth", "status", "jurisdiction",
                                 "embargoed_until", "webhook_url", "purposes", "scopes"]


async def test_audit_ranges_that_select_nothing_sensible_are_refused(cli: Cli) -> None:
    await _write_records(cli.settings, 3)
    backwards = await cli("audit", "verify", "--from", "20", "--to", "10")
    negative = await cli("audit", "verify", "--from", "-5")
    export = await cli("audit", "export", "--format", "jsonl", "--from", "3", "--to", "2")
    assert (backwards.code, backwards.out) == (2, "")
    assert backwards.error == "hub: error: --from 20 is after --to 10\n"
    assert negative.code == 2 and "record numbers start at 1" in negative.err
    assert export.code == 2 and "is after --to" in export.error


async def test_a_token_for_a_scope_the_client_lacks_or_a_disabled_client_says_why(
    cli: Cli,
) -> None:
    async with admin_services(cli.settings) as hub:
        await hub.auth.add_purpose("x", ["cards"])
        await hub.auth.add_client("exit-a", "A", ["permit:validity", "card:status"], ["x"])
    wrong_scope = await cli("token", "--client", "exit-a", "--scope", "enrollment:read")
    await cli("clients", "disable", "exit-a")
    disabled = await cli("token", "--client", "exit-a")
    assert (wrong_scope.code, wrong_scope.out) == (2, "")
    assert wrong_scope.error == (
        "hub: error: client exit-a may not ask for enrollment:read "
        "(its scopes: card:status permit:validity)\n"
    )
    assert (disabled.code, disabled.out) == (2, "")
    assert disabled.error == (
        "hub: error: client exit-a is disabled (`hub clients enable exit-a` first)\n"
    )


async def test_clients_and_keys_are_listed_as_aligned_tables(cli: Cli) -> None:
    async with admin_services(cli.settings) as hub:
        await hub.auth.add_purpose("x", ["permit"])
        await hub.auth.add_purpose("y", ["cards"])
        await hub.auth.add_client("a", "Agency A", ["permit:validity"], ["x"])
        await hub.auth.add_client("a-much-longer-id", "B", ["card:status"], ["y"])
    clients = await cli("clients", "list")
    await cli("keys", "rotate")
    keys = await cli("keys", "list")
    assert clients.code == 0 and keys.code == 0, keys.err
    lines = clients.out.splitlines()
    assert "\t" not in clients.out
    starts = {line.index(line.split()[1]) for line in lines}  # the second column lines up
    assert len(starts) == 1
    header, *rows = keys.out.splitlines()
    assert header.split() == ["kid", "alg", "state", "created", "age"]
    # A rotated-in key is published before it signs, so verifiers have it in time.
    assert sorted(row.split()[2] for row in rows) == ["next", "signing"]


async def test_help_shows_the_options_and_their_defaults(cli: Cli) -> None:
    demo = await cli("demo", "--help")
    simulate = await cli("simulate", "--help")
    assert "(default: 8000)" in demo.out and "(default: var)" in demo.out
    assert "(default: 5000)" in simulate.out


async def test_a_demo_on_a_busy_port_says_so_in_one_line_and_writes_nothing(
    cli: Cli, tmp_path: Path
) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        data = tmp_path / "demo-data"
        run = await cli("demo", "--port", str(port), "--data-dir", str(data))
    assert run.code == 1
    assert run.error.startswith(f"hub: error: cannot listen on 127.0.0.1:{port}: ")
    assert "--port" in run.error and len(run.error.splitlines()) == 1
    assert not data.exists()


async def test_serve_with_a_bad_setting_says_which_in_one_line(cli: Cli) -> None:
    run = await cli("serve", env=cli.env | {"HUB_AUDIT_CHECKPOINT_EVERY": "often"})
    assert (run.code, run.out) == (2, "")
    assert run.err.startswith("hub: error: settings: HUB_AUDIT_CHECKPOINT_EVERY: ")
    assert len(run.err.splitlines()) == 1


async def test_scopes_lists_what_each_scope_grants_and_whether_it_binds_rows(cli: Cli) -> None:
    run = await cli("scopes")
    assert run.code == 0, run.err
    table = {line.split()[0]: line.split()[1:] for line in run.out.splitlines()[1:] if line}
    assert table["permit:validity"][0] == "all" and "Query.permit" in table["permit:validity"]
    assert "Foreigner.passportNumber" in table["person:identity"]
    assert table["ops:read"][0] == "-"  # opens routes, not fields
    assert set(table) >= {"card:write", "audit:read", "events:publish", "enrollment:write"}
