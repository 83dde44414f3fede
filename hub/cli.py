"""The `hub` command line (its commands are listed in README.md, "Operating it").

Administrative commands are thin wrappers over `hub.admin`: they read their inputs, run one
async function under `asyncio.run`, and print the result. Errors are one line on stderr: exit 2
for bad input (unknown scope or client, unreadable file), 1 when a service fails or a check does
not pass. A client's secret is printed once, by `hub clients add`, and nowhere else.
Every command that opens the hub database names it on stderr and refuses a SQLite file that is
not there (only `hub database init` creates one). `hub audit check-evidence` is offline: it
opens no database and needs no settings.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import sys
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, TypeAlias

from pydantic import ValidationError

from hub.settings import Settings

if TYPE_CHECKING:
    from hub.admin import AdminServices

__all__ = ["main"]


def _demo(args: argparse.Namespace) -> int:
    from hub.demo import run_demo
    from hub.servers import bind
    from observability.logs import configure_logging

    try:
        sock = bind(args.host, args.port)  # before anything is written to the data folder
    except OSError as exc:
        return _error(OSError(
            f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc} "
            "(another hub demo running? choose another with --port)"), 1)
    configure_logging()
    demo = run_demo(args.host, args.port, Path(args.data_dir), args.seed, args.foreigners,
                    hub_socket=sock)
    try:
        import uvloop
    except ImportError:  # uvicorn[standard] installs it wherever it builds
        asyncio.run(demo)
    else:
        uvloop.run(demo)  # the loop `hub serve` runs on (uvicorn's "auto")
    return 0


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from hub.servers import http_protocol, run_server

    try:  # a configuration error shows here, once, not in every worker
        settings = _settings()
    except BadInput as exc:
        return _error(exc, 2)
    problem = settings.shared_state_problem(args.workers)
    if problem is not None:
        sys.stderr.write(f"hub: error: {problem}\n")
        return 2
    if args.workers > 1:
        # Migrations and the first signing key, once, before the workers race to make them.
        asyncio.run(_prepare_database(settings))
    config = uvicorn.Config(
        "hub.app:serving_app",
        http=http_protocol(settings.request_header_timeout_seconds),
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        access_log=not args.no_access_log,
        log_level="info",
        log_config=None,
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=settings.forwarded_allow_ips(),
    )
    run_server(config)
    return 0


async def _prepare_database(settings: Settings) -> None:
    from hub.components import Hub

    hub = await Hub.open(settings)
    await hub.close()


def _simulate(args: argparse.Namespace) -> int:
    from hub.servers import serve_app
    from simulators.run import run_simulator

    run_simulator(
        args.kind, args.host, args.port, Path(args.data_dir), args.seed, args.foreigners, None,
        serve_app, args.today,
    )
    return 0


def _scopes(args: argparse.Namespace) -> int:
    """Each scope, the fields it grants (from the field registry) and whether it binds rows."""
    from auth.scopes import SCOPES
    from schema.fields import FIELDS, INHERIT

    granted: dict[str, list[str]] = {scope: [] for scope in SCOPES}
    bound: set[str] = set()
    for name, entry in FIELDS.items():
        if entry.scope == INHERIT:
            continue
        granted.setdefault(entry.scope, []).append(name)
        if entry.binding != "national":
            bound.add(entry.scope)
    rows = [("scope", "rows", "grants")]
    for scope in sorted(granted):
        fields = granted[scope]
        rows.append((
            scope, "bound" if scope in bound else "all" if fields else "-",
            " ".join(sorted(fields)) or _NOT_FIELDS.get(scope, "-"),
        ))
    _table(rows)
    print("\nrows: 'all' = any row (a national check); 'bound' = only rows of the regions in the "
          "client's jurisdiction")
    return 0


# Scopes that open something other than schema fields.
_NOT_FIELDS = {
    "events:publish": "POST /events/permits (the Work Management System pushes permit changes)",
    "ops:read": "GET /metrics and the detail of GET /readyz",
}


def _schema_export(args: argparse.Namespace) -> int:
    from schema import public_sdl, subgraph_sdl

    sys.stdout.write((subgraph_sdl() if args.federation else public_sdl()) + "\n")
    return 0


def _check_duplicates(args: argparse.Namespace) -> int:
    """Exit 1 if any check finds a person it reports, 0 if none (2: not configured)."""
    return _guarded(lambda: asyncio.run(_duplicates(_settings())))


async def _duplicates(settings: Settings) -> int:
    from sqlalchemy.engine import make_url

    from connectors._http import new_http_client
    from connectors.agency import SqlEnrollmentSource, create_agency_engines
    from connectors.cards import HttpCardSource
    from connectors.errors import ConnectorError
    from connectors.resilience import Guard
    from connectors.wms import HttpPermitSource
    from hub.duplicates import CHECKS, CheckSources

    if not settings.agency_databases or not settings.wms_url or not settings.cards_url:
        raise BadInput("hub check duplicates reads HUB_AGENCY_DATABASES, HUB_WMS_URL and "
                       "HUB_CARDS_URL: set all three")
    timeout = settings.upstream_timeout_seconds
    databases = ", ".join(
        f"{region} {make_url(url).render_as_string(hide_password=True)}"
        for region, url in sorted(settings.agency_databases.items())
    )
    print(f"reading the agency databases ({databases}), the WMS ({settings.wms_url}) and the"
          f" card system ({settings.cards_url}); changing nothing")
    agencies = SqlEnrollmentSource(create_agency_engines(settings.agency_databases, timeout),
                                   timeout)
    http = new_http_client(timeout, 4)
    wms = HttpPermitSource(http, settings.wms_url,
                           guard=Guard("wms", settings.upstream_policy("wms")))
    cards = HttpCardSource(http, settings.cards_url,
                           guard=Guard("cards", settings.upstream_policy("cards")))
    findings = 0
    try:
        for check in CHECKS:
            print(f"check {check.name}: reads {check.reads}")
            for finding in await check.run(CheckSources(agencies, wms, cards)):
                print(finding.line())
                findings += 1
    except ConnectorError as exc:
        return _error(exc, 1)
    finally:
        await http.aclose()
        await agencies.close()
    print(f"{findings} person(s) found" if findings else "none found")
    return 1 if findings else 0


# -- administrative commands ---------------------------------------------------------------------


class BadInput(Exception):
    """A command-line value or input file the command cannot use (exit 2)."""


AdminCommand = Callable[["AdminServices", argparse.Namespace], Awaitable[int]]


def _admin(command: AdminCommand) -> Callable[[argparse.Namespace], int]:
    """A `run` for argparse: settings built once, services opened, errors made one line."""

    def run(args: argparse.Namespace) -> int:
        return _guarded(lambda: asyncio.run(_with_services(command, args)))

    return run


async def _with_services(command: AdminCommand, args: argparse.Namespace) -> int:
    from hub.admin import admin_services

    settings = _settings()
    _check_database(settings, create=getattr(args, "create_database", False))
    async with admin_services(settings) as services:
        return await command(services, args)


def _check_database(settings: Settings, *, create: bool) -> None:
    """Say which hub database the command uses; refuse a SQLite file that is not there.

    Opening a missing SQLite file creates an empty one: a command run from the wrong folder
    would then report on (or write to) a database nobody uses. Only `hub database init`
    creates one."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(settings.database_url)
    except ArgumentError:
        raise BadInput("HUB_DATABASE_URL: not a database URL") from None
    if url.get_backend_name() != "sqlite":
        sys.stderr.write(f"hub: database: {url.render_as_string(hide_password=True)}\n")
        return
    path = Path(url.database or "").resolve()
    sys.stderr.write(f"hub: database: {path} (SQLite)\n")
    if not create and not path.is_file():
        raise BadInput(
            f"no hub database at {path}: run this where the hub keeps its data, set "
            "HUB_DATABASE_URL, or create one with `hub database init`"
        )


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"HUB_{'_'.join(str(part) for part in e['loc']).upper()}: {e['msg']}"
            for e in exc.errors()
        )
        raise BadInput(f"settings: {problems}") from None


def _guarded(run: Callable[[], int]) -> int:
    from authlib.oauth2 import OAuth2Error

    from auth import AuthError
    from hub.admin import AdminUnavailable
    from infra.kv import KeyValueUnavailable
    from observability.audit import AuditError, AuditQueryError

    try:
        return run()
    except OAuth2Error as exc:
        return _error(BadInput(exc.description or exc.error), 2)
    except (BadInput, AuthError, AuditQueryError) as exc:
        return _error(exc, 2)
    except (AdminUnavailable, AuditError, KeyValueUnavailable, OSError) as exc:
        return _error(exc, 1)


def _error(exc: BaseException, code: int) -> int:
    message = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    sys.stderr.write(f"hub: error: {message}\n")
    return code


def _words(text: str | None) -> list[str]:
    return (text or "").replace(",", " ").split()


def _date(text: str | None, option: str) -> dt.date | None:
    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise BadInput(f"{option}: {text!r} is not a date (YYYY-MM-DD)") from None


def _read_bytes(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise BadInput(f"{what}: cannot read {path}: {exc.strerror or exc}") from None


def _read_json(path: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(_read_bytes(path, what))
    except ValueError:
        raise BadInput(f"{what}: {path} is not JSON") from None
    if not isinstance(value, dict):
        raise BadInput(f"{what}: {path} is not a JSON object")
    return value


@contextmanager
def _output(path: str | None) -> Iterator[TextIO]:
    if path is None:
        yield sys.stdout
        return
    try:
        out = Path(path).open("w", encoding="utf-8", newline="")  # noqa: SIM115
    except OSError as exc:
        raise BadInput(f"--output: cannot write {path}: {exc.strerror or exc}") from None
    with out:
        yield out


async def _clients_add(hub: AdminServices, args: argparse.Namespace) -> int:
    key = _read_json(args.public_key_file, "--public-key-file") if args.public_key_file else None
    client, secret = await hub.auth.add_client(
        args.client_id, args.agency, _words(args.scopes), _words(args.purposes),
        public_key=key, embargoed_until=_date(args.embargoed_until, "--embargoed-until"),
        webhook_url=args.webhook_url, jurisdiction=_jurisdiction(args.jurisdiction),
    )
    print(f"client_id: {client.client_id}")
    if secret is not None:
        print(f"client_secret: {secret}")
        sys.stderr.write("hub: store the secret now: it is not kept and never shown again\n")
    else:
        print(f"auth_method: {client.auth_method}")
    return 0


def _jurisdiction(text: str | None) -> list[str]:
    """`--jurisdiction 420100,42`: required, so that no new client is national by omission."""
    prefixes = [p.strip() for p in (text or "").split(",") if p.strip()]
    if not prefixes:
        raise BadInput("a client needs --jurisdiction (e.g. 420100, 42 or *)")
    return prefixes


async def _clients_list(hub: AdminServices, args: argparse.Namespace) -> int:
    rows = [("client_id", "agency", "auth", "status", "jurisdiction", "embargoed_until",
             "webhook_url", "purposes", "scopes")]
    for c in await hub.auth.list_clients():
        rows.append((
            c.client_id, c.agency, c.auth_method, "enabled" if c.enabled else "disabled",
            ",".join(c.jurisdiction),
            c.embargoed_until.isoformat() if c.embargoed_until else "-", c.webhook_url or "-",
            " ".join(sorted(c.purposes)), " ".join(sorted(c.scopes)) or "-",
        ))
    if args.tsv:
        for row in rows:
            print("\t".join(row))
    else:
        _table(rows)
    return 0


async def _clients_disable(hub: AdminServices, args: argparse.Namespace) -> int:
    client = await hub.auth.disable_client(args.client_id)
    print(f"{client.client_id}: disabled")
    return 0


async def _clients_enable(hub: AdminServices, args: argparse.Namespace) -> int:
    client = await hub.auth.enable_client(args.client_id)
    print(f"{client.client_id}: enabled")
    return 0


async def _clients_set_scopes(hub: AdminServices, args: argparse.Namespace) -> int:
    client = await hub.auth.set_scopes(args.client_id, _words(args.scopes))
    print(f"{client.client_id}: scopes {' '.join(sorted(client.scopes)) or '(none)'}")
    return 0


async def _clients_set_purposes(hub: AdminServices, args: argparse.Namespace) -> int:
    client = await hub.auth.set_purposes(args.client_id, _words(args.purposes))
    print(f"{client.client_id}: purposes {' '.join(sorted(client.purposes))}")
    return 0


async def _clients_set_jurisdiction(hub: AdminServices, args: argparse.Namespace) -> int:
    client = await hub.auth.set_jurisdiction(args.client_id, args.prefixes)
    print(f"{client.client_id}: jurisdiction {','.join(client.jurisdiction)}")
    return 0


async def _clients_add_idp(hub: AdminServices, args: argparse.Namespace) -> int:
    from auth.identity_providers import parse_roles

    jwks = _read_json(args.jwks_file, "--jwks-file") if args.jwks_file else None
    provider = await hub.auth.add_identity_provider(
        args.client_id, args.issuer, args.kind, parse_roles(args.roles),
        jwks_url=args.jwks_url, jwks=jwks,
    )
    print(f"{provider.client_id}: trusts {provider.issuer} ({provider.kind})")
    return 0


async def _clients_idps(hub: AdminServices, args: argparse.Namespace) -> int:
    print("client_id\tissuer\tkind\tkeys\troles")
    for p in await hub.auth.list_identity_providers(args.client_id):
        roles = " ".join(f"{r}={','.join(sorted(s))}" for r, s in sorted(p.roles.items()))
        print("\t".join((p.client_id, p.issuer, p.kind, p.jwks_url or "registered JWKS", roles)))
    return 0


async def _clients_remove_idp(hub: AdminServices, args: argparse.Namespace) -> int:
    if not await hub.auth.remove_identity_provider(args.client_id, args.issuer):
        raise BadInput(f"{args.client_id} does not trust {args.issuer}")
    print(f"{args.client_id}: no longer trusts {args.issuer}")
    return 0


async def _purposes_add(hub: AdminServices, args: argparse.Namespace) -> int:
    purpose = await hub.auth.add_purpose(
        args.name, _words(args.operations), needs_officer=args.needs_officer
    )
    print(f"{purpose.name}: {_operations(purpose.operations)}")
    return 0


async def _purposes_set_operations(hub: AdminServices, args: argparse.Namespace) -> int:
    purpose = await hub.auth.set_purpose_operations(args.name, _words(args.operations))
    print(f"{purpose.name}: {_operations(purpose.operations)}")
    return 0


def _operations(operations: frozenset[str]) -> str:
    if not operations:
        return "(covers no operation: every request made for it is refused)"
    return " ".join(sorted(operations))


async def _purposes_list(hub: AdminServices, args: argparse.Namespace) -> int:
    """Every registered purpose, and the purposes clients name that are not registered (they
    cover nothing until they are), with the clients registered for each."""
    purposes = await hub.auth.list_purposes()
    users: dict[str, list[str]] = {}
    for client in await hub.auth.list_clients():
        for name in client.purposes:
            users.setdefault(name, []).append(client.client_id)
    rows = [("purpose", "needs_officer", "operations", "clients")]
    rows += [
        (p.name, "yes" if p.needs_officer else "no", " ".join(sorted(p.operations)) or "-",
         " ".join(users.get(p.name, ())) or "-")
        for p in purposes
    ]
    registered = {p.name for p in purposes}
    rows += [
        (name, "-", "(not registered: covers nothing)", " ".join(clients))
        for name, clients in sorted(users.items()) if name not in registered
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        print("  ".join([*(cell.ljust(w) for cell, w in zip(row, widths, strict=False)),
                         row[3]]))
    return 0


async def _token(hub: AdminServices, args: argparse.Namespace) -> int:
    client = await hub.auth.get_client(args.client)
    if not client.enabled:
        raise BadInput(f"client {client.client_id} is disabled "
                       f"(`hub clients enable {client.client_id}` first)")
    wanted = _words(args.scope)
    refused = sorted(set(wanted) - client.scopes)
    if refused:
        raise BadInput(
            f"client {client.client_id} may not ask for {' '.join(refused)} "
            f"(its scopes: {' '.join(sorted(client.scopes)) or 'none'})"
        )
    print(await hub.auth.issue_token(args.client, " ".join(wanted) or None))
    return 0


async def _database_init(hub: AdminServices, args: argparse.Namespace) -> int:
    print("hub database ready (migrated to the latest schema)")
    return 0


async def _documents_add(hub: AdminServices, args: argparse.Namespace) -> int:
    await hub.auth.get_client(args.client)  # an unknown client is an error, not a new list
    for path in args.files:
        raw = _read_bytes(path, "FILE")
        try:
            document_id = await hub.documents.add(args.client, raw.decode("utf-8"), Path(path).name)
        except (UnicodeDecodeError, ValueError) as exc:
            raise BadInput(f"{path}: {exc}") from None
        await _record_admin(hub, "documents add", args.client, document_id)
        print(f"sha256:{document_id}  {path}")
    return 0


async def _documents_list(hub: AdminServices, args: argparse.Namespace) -> int:
    for stored in await hub.documents.list(args.client):
        print(f"sha256:{stored.document_id}  {stored.name or '-'}  {stored.created_at:%Y-%m-%d}")
    return 0


async def _documents_remove(hub: AdminServices, args: argparse.Namespace) -> int:
    document_id = args.document_id.removeprefix("sha256:")
    if not await hub.documents.remove(args.client, document_id):
        raise BadInput(f"{args.client} has no trusted document {args.document_id}")
    await _record_admin(hub, "documents remove", args.client, document_id)
    print(f"removed sha256:{document_id}")
    return 0


async def _record_admin(hub: AdminServices, operation: str, client_id: str, detail: str) -> None:
    from observability.audit import AuditEvent

    now = dt.datetime.now(dt.UTC)
    await hub.audit.append(AuditEvent(time=now, kind="admin", outcome="OK", client_id=client_id,
                                      operation=operation, fields=(f"sha256:{detail}",)))


async def _keys_rotate(hub: AdminServices, args: argparse.Namespace) -> int:
    print(await hub.auth.rotate_keys())
    return 0


async def _keys_list(hub: AdminServices, args: argparse.Namespace) -> int:
    if args.jwks:
        print(json.dumps(hub.auth.jwks(), indent=2))
        return 0
    now = dt.datetime.now(dt.UTC)
    rows = [("kid", "alg", "state", "created", "age")]
    for key, state in await hub.auth.key_states():
        created = dt.datetime.fromtimestamp(key.created_at, dt.UTC)
        rows.append((key.kid, key.alg, state, f"{created:%Y-%m-%d %H:%M}Z",
                     _age(now - created)))
    _table(rows)
    return 0


def _age(delta: dt.timedelta) -> str:
    days, seconds = delta.days, delta.seconds
    if days:
        return f"{days} d"
    return f"{seconds // 3600} h" if seconds >= 3600 else f"{seconds // 60} min"


def _table(rows: Sequence[Sequence[str]]) -> None:
    """Columns padded to their widest cell; the last column is not padded."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        print("  ".join([*cells, row[-1]]).rstrip())


def _check_range(args: argparse.Namespace) -> None:
    if args.from_seq is not None and args.to_seq is not None and args.from_seq > args.to_seq:
        raise BadInput(f"--from {args.from_seq} is after --to {args.to_seq}")


async def _audit_verify(hub: AdminServices, args: argparse.Namespace) -> int:
    _check_range(args)
    jwks = _read_json(args.jwks, "--jwks") if args.jwks else None
    result = await hub.audit.verify(args.from_seq, args.to_seq, jwks=_jwks_of(jwks))
    if result.ok:
        print(f"ok: {result.checked} records, {result.checkpoints} checkpoints")
        return 0
    print(f"BROKEN at seq {result.first_bad_seq}: {result.reason}"
          f" ({result.checked} records checked before it)")
    return 1


async def _audit_export(hub: AdminServices, args: argparse.Namespace) -> int:
    _check_range(args)
    with _output(args.output) as out:
        count = await hub.audit.export(args.format, out, args.from_seq, args.to_seq)
    await _record_read(hub, f"cli:audit export {args.format}")
    if args.output is not None:
        print(f"{count} records written to {args.output}")
    return 0


async def _audit_prove(hub: AdminServices, args: argparse.Namespace) -> int:
    proof = await hub.audit.prove(args.record_id)
    # The keys ride along: whoever checks the proof years later needs the key that signed it,
    # which will have left the published JWKS by then.
    proof["jwks"] = hub.auth.jwks()
    with _output(args.output) as out:
        out.write(json.dumps(proof, indent=2, sort_keys=True) + "\n")
    await _record_read(hub, "cli:audit prove")
    return 0


async def _record_read(hub: AdminServices, operation: str) -> None:
    from observability.audit import AuditEvent

    now = dt.datetime.now(dt.UTC)
    await hub.audit.append(AuditEvent(time=now, kind="audit_read", outcome="OK",
                                      operation=operation))


def _jwks_of(document: dict[str, Any] | None) -> dict[str, Any] | None:
    """A JWKS file, or a proof from `hub audit prove` (which carries the JWKS)."""
    if document is None:
        return None
    jwks = document.get("jwks", document)
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
        raise BadInput("--jwks: neither a JWK set nor a proof carrying one")
    return jwks


def _audit_check_evidence(args: argparse.Namespace) -> int:
    # Nothing here is async and nothing opens a database: the check needs only the files.
    return _guarded(lambda: _check_evidence(args))


def _check_evidence(args: argparse.Namespace) -> int:
    from observability.audit import check_evidence

    evidence = args.evidence
    if evidence.startswith("@"):
        evidence = _read_bytes(evidence[1:], "--evidence").decode("ascii", "replace")
    body = _read_bytes(args.body, "--body")
    jwks = _jwks_of(_read_json(args.jwks, "--jwks"))
    assert jwks is not None
    proof = _read_json(args.proof, "--proof") if args.proof else None
    checked = check_evidence(evidence, body, jwks, proof)
    if not checked.ok or checked.claims is None:
        print(f"evidence NOT ok: {checked.reason}")
        return 1
    claims = checked.claims
    proved = f", in the chain up to checkpoint seq {proof['checkpoint']['seq']}" if proof else ""
    print(f"evidence ok: record {claims.record_id}, body sha256 {claims.body_sha256},"
          f" signed by {checked.kid}{proved}")
    return 0


class _Parser(argparse.ArgumentParser):
    """Every command's --help shows its options' defaults (subcommands inherit the class)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", argparse.ArgumentDefaultsHelpFormatter)
        super().__init__(*args, **kwargs)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="hub", description="permit-hub: the GraphQL data-exchange hub")
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="hub + simulated source systems + synthetic data")
    demo.add_argument("--host", default="127.0.0.1", help="address to listen on")
    demo.add_argument("--port", type=int, default=8000, help="the hub's port")
    demo.add_argument("--data-dir", default="var",
                      help="databases, keys, samples.json and clients.json go here")
    demo.add_argument("--seed", type=int, default=2025, help="seed of the synthetic data")
    demo.add_argument("--foreigners", type=int, default=5000,
                      help="how many synthetic foreigners (permits, enrollments, cards)")
    demo.set_defaults(run=_demo)

    serve = commands.add_parser("serve", help="the hub alone, configured by HUB_* variables")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=8000, help="port to listen on")
    serve.add_argument(
        "--workers", type=int, default=1,
        help="worker processes on the port (one per core serves the most requests)",
    )
    serve.add_argument(
        "--no-access-log", action="store_true",
        help="no per-request access log line (every request is still audited and counted)",
    )
    serve.set_defaults(run=_serve)

    simulate = commands.add_parser("simulate", help="run one simulated source system")
    simulate.add_argument("kind", choices=["wms", "agency", "cards"], help="which source system")
    simulate.add_argument("--host", default="127.0.0.1", help="address to listen on")
    simulate.add_argument("--port", type=int, required=True, help="port to listen on")
    simulate.add_argument("--data-dir", default="var", help="where its data lives")
    simulate.add_argument("--seed", type=int, default=2025, help="seed of the synthetic data")
    simulate.add_argument("--foreigners", type=int, default=5000,
                          help="how many synthetic foreigners")
    simulate.add_argument("--today", type=_day, default=None, metavar="YYYY-MM-DD",
                          help="the date the synthetic data is made as of (default: today); two "
                               "simulators given the same seed, size and date hold the same data")
    simulate.set_defaults(run=_simulate)

    schema = commands.add_parser("schema", help="schema tools")
    schema_commands = schema.add_subparsers(dest="schema_command", required=True)
    export = schema_commands.add_parser("export", help="print the SDL")
    export.add_argument(
        "--federation", action="store_true",
        help="the Apollo Federation v2 subgraph SDL (with @link and @key) a gateway composes",
    )
    export.set_defaults(run=_schema_export)

    commands.add_parser(
        "scopes", help="each scope, the fields it grants and whether it is bound to rows"
    ).set_defaults(run=_scopes)
    _clients_parser(commands)
    check = commands.add_parser("check", help="checks of the source systems' data (read only)")
    check_commands = check.add_subparsers(dest="check_command", required=True)
    check_commands.add_parser(
        "duplicates",
        help="persons with more than one live enrollment, or several live cards of one kind, "
             "across the agencies (exit 1 if any)",
    ).set_defaults(run=_check_duplicates)

    _purposes_parser(commands)
    token = commands.add_parser("token", help="issue an access token for a registered client")
    token.add_argument("--client", required=True, metavar="CLIENT_ID")
    token.add_argument("--scope", help='space-separated, e.g. "permit:validity card:status"')
    token.set_defaults(run=_admin(_token))
    _keys_parser(commands)
    database = commands.add_parser("database", help="the hub database")
    database_commands = database.add_subparsers(dest="database_command", required=True)
    init = database_commands.add_parser(
        "init", help="create (SQLite) and migrate the hub database HUB_DATABASE_URL names")
    init.set_defaults(run=_admin(_database_init), create_database=True)
    _documents_parser(commands)
    _audit_parser(commands)
    return parser


_Commands: TypeAlias = "argparse._SubParsersAction[_Parser]"


def _clients_parser(commands: _Commands) -> None:
    clients = commands.add_parser("clients", help="the client registry")
    sub = clients.add_subparsers(dest="clients_command", required=True)
    add = sub.add_parser("add", help="register a client; prints its secret once")
    add.add_argument("client_id")
    add.add_argument("--agency", required=True)
    add.add_argument("--scopes", required=True, help='space-separated, e.g. "permit:validity"')
    add.add_argument("--purposes", required=True,
                     help='registered purposes (hub purposes list), e.g. "benefit-check"')
    add.add_argument("--jurisdiction", metavar="PREFIX,...",
                     help="GB/T 2260 region prefixes it serves (420100, 42) or * for national")
    add.add_argument("--public-key-file", metavar="JWK.json",
                     help="authenticate with private_key_jwt using this public JWK (set)")
    add.add_argument("--embargoed-until", metavar="YYYY-MM-DD")
    add.add_argument("--webhook-url", metavar="URL",
                     help="https, its host resolving to public addresses only")
    add.set_defaults(run=_admin(_clients_add))
    listing = sub.add_parser("list", help="registered clients (never secrets)")
    listing.add_argument("--tsv", action="store_true",
                         help="tab-separated, for scripts (default: aligned columns)")
    listing.set_defaults(run=_admin(_clients_list))
    for name, command in (("disable", _clients_disable), ("enable", _clients_enable)):
        one = sub.add_parser(name, help=f"{name} a client")
        one.add_argument("client_id")
        one.set_defaults(run=_admin(command))
    scopes = sub.add_parser("set-scopes", help="replace a client's scopes")
    scopes.add_argument("client_id")
    scopes.add_argument("scopes", help='space-separated, e.g. "permit:validity card:status"')
    scopes.set_defaults(run=_admin(_clients_set_scopes))
    purposes = sub.add_parser("set-purposes", help="replace a client's purposes of use")
    purposes.add_argument("client_id")
    purposes.add_argument("purposes", help='space-separated, e.g. "card-issuance card-service"')
    purposes.set_defaults(run=_admin(_clients_set_purposes))
    regions = sub.add_parser("set-jurisdiction",
                             help="replace the region prefixes a client serves (or *)")
    regions.add_argument("client_id")
    regions.add_argument("prefixes", nargs="+", metavar="PREFIX")
    regions.set_defaults(run=_admin(_clients_set_jurisdiction))
    _identity_provider_parsers(sub)


def _identity_provider_parsers(sub: _Commands) -> None:
    idp = sub.add_parser(
        "add-idp", help="trust an identity provider's assertions for token exchange")
    idp.add_argument("client_id")
    idp.add_argument("--issuer", required=True, metavar="URL", help="the assertions' iss")
    keys = idp.add_mutually_exclusive_group(required=True)
    keys.add_argument("--jwks-url", metavar="URL", help="where its public keys are published")
    keys.add_argument("--jwks-file", metavar="JWKS.json", help="its public keys, kept here")
    idp.add_argument("--kind", required=True, choices=["officer", "subject"],
                     help="officers of the client's agency, or persons it serves (self:*)")
    idp.add_argument("--roles", required=True, metavar="'ROLE=SCOPE,... ...'",
                     help="the hub scopes each asserted role opens, e.g. "
                          "'officer=permit:validity,permit:holder'")
    idp.set_defaults(run=_admin(_clients_add_idp))
    idps = sub.add_parser("idps", help="identity providers trusted for token exchange")
    idps.add_argument("client_id", nargs="?", help="only this client's")
    idps.set_defaults(run=_admin(_clients_idps))
    remove = sub.add_parser("remove-idp", help="stop trusting an identity provider")
    remove.add_argument("client_id")
    remove.add_argument("--issuer", required=True, metavar="URL")
    remove.set_defaults(run=_admin(_clients_remove_idp))


def _purposes_parser(commands: _Commands) -> None:
    purposes = commands.add_parser(
        "purposes", help="purposes of use and the operations (root fields) each covers"
    )
    sub = purposes.add_subparsers(dest="purposes_command", required=True)
    add = sub.add_parser("add", help="register a purpose and the operations it covers")
    add.add_argument("name")
    add.add_argument("--operations", required=True,
                     help='root fields it covers, space-separated, e.g. "permit permits cards"')
    add.add_argument("--needs-officer", action="store_true",
                     help="its requests must name the officer acting")
    add.set_defaults(run=_admin(_purposes_add))
    operations = sub.add_parser("set-operations",
                                help="replace the operations (root fields) a purpose covers")
    operations.add_argument("name")
    operations.add_argument("operations", help='space-separated, e.g. "updateCardStatus cards"')
    operations.set_defaults(run=_admin(_purposes_set_operations))
    sub.add_parser("list", help="purposes, their operations and the clients that use them"
                   ).set_defaults(run=_admin(_purposes_list))


def _documents_parser(commands: _Commands) -> None:
    documents = commands.add_parser("documents", help="trusted documents, per client")
    sub = documents.add_subparsers(dest="documents_command", required=True)
    add = sub.add_parser("add", help="register GraphQL documents; prints each one's id")
    add.add_argument("--client", required=True)
    add.add_argument("files", nargs="+", metavar="FILE.graphql")
    add.set_defaults(run=_admin(_documents_add))
    listing = sub.add_parser("list", help="a client's trusted documents")
    listing.add_argument("--client", required=True)
    listing.set_defaults(run=_admin(_documents_list))
    remove = sub.add_parser("remove", help="take a document off a client's list")
    remove.add_argument("--client", required=True)
    remove.add_argument("document_id", metavar="sha256:HEX")
    remove.set_defaults(run=_admin(_documents_remove))


def _keys_parser(commands: _Commands) -> None:
    keys = commands.add_parser("keys", help="the hub's signing keys")
    sub = keys.add_subparsers(dest="keys_command", required=True)
    sub.add_parser("rotate", help="publish a new signing key; prints its kid").set_defaults(
        run=_admin(_keys_rotate))
    listing = sub.add_parser("list", help="the published keys: which one signs, how old each is")
    listing.add_argument("--jwks", action="store_true", help="print the public JWKS instead")
    listing.set_defaults(run=_admin(_keys_list))


def _day(text: str) -> dt.date:
    """A date given as an option, YYYY-MM-DD."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def _seq(text: str) -> int:
    """A record's sequence number: 1 or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a record number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value}: record numbers start at 1")
    return value


def _seq_range(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--from", dest="from_seq", type=_seq, metavar="SEQ",
                        help="first record (default: the first)")
    parser.add_argument("--to", dest="to_seq", type=_seq, metavar="SEQ",
                        help="last record (default: the last)")


def _audit_parser(commands: _Commands) -> None:
    audit = commands.add_parser("audit", help="the audit log")
    sub = audit.add_subparsers(dest="audit_command", required=True)
    verify = sub.add_parser("verify", help="check the hash chain and signed checkpoints")
    _seq_range(verify)
    verify.add_argument("--jwks", metavar="FILE",
                        help="check checkpoints against this trusted JWKS (or proof)")
    verify.set_defaults(run=_admin(_audit_verify))
    export = sub.add_parser("export", help="write the records as JSON Lines or CSV")
    export.add_argument("--format", required=True, choices=["jsonl", "csv"])
    export.add_argument("--output", metavar="FILE", help="default: standard output")
    _seq_range(export)
    export.set_defaults(run=_admin(_audit_export))
    prove = sub.add_parser("prove", help="a proof (with the JWKS) that a record is in the log")
    prove.add_argument("record_id")
    prove.add_argument("--output", metavar="FILE", help="default: standard output")
    prove.set_defaults(run=_admin(_audit_prove))
    check = sub.add_parser("check-evidence", help="offline: does evidence vouch for a body?")
    check.add_argument("--evidence", required=True, metavar="EVIDENCE_OR_@FILE")
    check.add_argument("--body", required=True, metavar="FILE")
    check.add_argument("--jwks", required=True, metavar="FILE",
                       help="a JWKS, or a proof from `hub audit prove`")
    check.add_argument("--proof", metavar="FILE", help="also check the record is in the chain")
    check.set_defaults(run=_audit_check_evidence)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    raise SystemExit(main())
