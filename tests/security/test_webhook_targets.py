"""Attack: a client's `webhook_url` as a way to make the hub call inside its own network (SSRF).

Webhooks go to https URLs without userinfo whose host resolves only to public addresses
(http to loopback in the demo only). The rule holds at registration, with one clear line from
`hub clients add`, and again before every delivery, since DNS may answer differently by then:
the delivery connects to the address that was checked, and a refused one is recorded, not
retried. Resolution is the worker's injected dependency (a fake DNS) where the test needs a
name to change its answer; otherwise it is the system's (`localhost`).
"""

from __future__ import annotations

import datetime as dt
import logging
import ssl
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from joserfc import jwt
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from auth import RegistryError
from auth.webhook_targets import WebhookTargets
from connectors.events import PermitChange
from connectors.records import PermitEventKind, PermitMedium, PermitStatus
from hub.database import create_engine, migrate
from hub.tables import webhook_deliveries
from hub.webhooks import Recipient, WebhookWorker, enqueue_deliveries
from simulators import generate_signing_key
from tests.conftest import HubClient
from tests.hub.test_cli import Cli, cli  # noqa: F401 (the fixture)
from tests.simulators.servers import serve

# A demo purpose (the hub fixture registers them): a client names registered purposes only.
SCOPES, PURPOSES = ["events:subscribe"], ["residence-permit-check"]


# -- registration ---------------------------------------------------------------------------------

REFUSED = [
    ("http://hooks.agency.example/hook", "https only"),
    ("ftp://hooks.agency.example/hook", "https only"),
    ("https://agency:s3cret-pass@hooks.agency.example/hook", "no user name or password"),
    ("https://10.20.30.40/hook", "private address"),
    ("https://192.168.1.10/hook", "private address"),
    ("https://127.0.0.1:8443/hook", "loopback"),
    ("https://[::1]/hook", "loopback"),
    ("https://localhost/hook", "localhost resolves to"),  # the system resolver's answer
    ("https://169.254.169.254/latest/meta-data/", "cloud metadata"),
    ("https://[fd00:ec2::254]/", "cloud metadata"),
    ("https://169.254.10.1/hook", "link-local"),
    ("https://[fe80::1]/hook", "link-local"),
    ("https://224.0.0.251/hook", "multicast"),
    ("https://0.0.0.0/hook", "unspecified"),
    ("https://[::ffff:10.0.0.1]/hook", "private address"),  # IPv4 inside IPv6
    ("https://100.64.0.1/hook", "reserved"),  # carrier-grade NAT
    ("not a url", "absolute URL"),
]


async def test_registration_refuses_unsafe_webhook_targets_with_a_clear_reason(
    hub: HubClient,
) -> None:
    for n, (url, reason) in enumerate(REFUSED):
        client_id = f"hooked-{n}"
        with pytest.raises(RegistryError) as refused:
            await hub.hub.auth.add_client(
                client_id, "An agency", SCOPES, PURPOSES, webhook_url=url
            )
        message = refused.value.description
        assert reason in message and message.startswith("webhook URL: "), (url, message)
        assert "\n" not in message and "s3cret" not in message
        assert refused.value.code == "BAD_USER_INPUT"
        assert await hub.hub.auth.registry.find(client_id) is None, url


async def test_registration_accepts_a_public_https_target_and_a_name_not_yet_in_dns(
    hub: HubClient,
) -> None:
    public, _ = await hub.hub.auth.add_client(
        "public-hook", "An agency", SCOPES, PURPOSES, webhook_url="https://93.184.215.14/hook"
    )
    later, _ = await hub.hub.auth.add_client(  # checked again before every delivery
        "later-hook", "An agency", SCOPES, PURPOSES,
        webhook_url="https://hooks.agency.invalid/hook",
    )
    assert public.webhook_url == "https://93.184.215.14/hook"
    assert later.webhook_url == "https://hooks.agency.invalid/hook"


async def test_hub_clients_add_says_why_in_one_line_and_registers_nothing(
    cli: Cli,  # noqa: F811 (the fixture)
) -> None:
    args = ["clients", "add", "hooked", "--agency", "An agency", "--scopes", "events:subscribe",
            "--purposes", "monitoring", "--jurisdiction", "*", "--webhook-url"]
    assert (await cli("purposes", "add", "monitoring", "--operations", "")).code == 0
    private = await cli(*args, "https://10.0.0.5/hook")
    loopback_http = await cli(*args, "http://127.0.0.1:9/hook")
    demo = await cli(*args, "http://127.0.0.1:9/hook", env=cli.env | {"HUB_DEMO": "1"})
    assert private.code == 2 and private.out == ""
    assert private.error == "hub: error: webhook URL: 10.0.0.5 is a private address\n"
    assert loopback_http.code == 2
    assert "https only" in loopback_http.error and len(loopback_http.error.splitlines()) == 1
    assert demo.code == 0, demo.err  # the demo's loopback receivers, over http
    assert "client_secret: " in demo.out


# -- delivery -------------------------------------------------------------------------------------


@dataclass
class FakeDns:
    """The worker's resolver: what each name resolves to now (a test may change it)."""

    answers: dict[str, list[str]]
    asked: list[str] = field(default_factory=list)

    async def __call__(self, host: str, port: int) -> Sequence[str]:
        self.asked.append(host)
        if host not in self.answers:
            raise OSError(f"{host}: no such name")
        return self.answers[host]


@dataclass
class Receiver:
    requests: list[Request] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)

    async def hook(self, request: Request) -> Response:
        self.requests.append(request)
        self.bodies.append(await request.body())
        return Response(status_code=202)

    async def moved(self, request: Request) -> Response:
        self.requests.append(request)
        return RedirectResponse(str(request.url).replace("/moved", "/internal"), 307)

    def app(self) -> Starlette:
        return Starlette(routes=[
            Route("/hook", self.hook, methods=["POST"]),
            Route("/moved", self.moved, methods=["POST"]),
            Route("/internal", self.hook, methods=["POST"]),
        ])


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """A hub database with nothing else: no hub's own worker races the test's for its rows."""
    engine = create_engine(database_url)
    await migrate(engine)
    yield engine
    await engine.dispose()


_KEY = generate_signing_key()


async def _sign(payload: bytes, typ: str) -> str:
    return jwt.encode({"alg": "ES256", "typ": typ}, orjson.loads(payload), _KEY)


@asynccontextmanager
async def _worker(
    engine: AsyncEngine, targets: WebhookTargets, http: httpx.AsyncClient | None = None
) -> AsyncIterator[WebhookWorker]:
    worker = WebhookWorker(
        engine, http or httpx.AsyncClient(), _sign, issuer="https://hub.example",
        max_attempts=3, backoff_seconds=0.01, targets=targets,
    )
    try:
        yield worker
    finally:
        await worker.close()


async def _queue(engine: AsyncEngine, url: str) -> None:
    change = PermitChange(
        event_id=str(uuid.uuid4()), permit_number="420100202600050124",
        kind=PermitEventKind.CANCELLED, at=dt.datetime.now(dt.UTC),
        status=PermitStatus.CANCELLED, medium=PermitMedium.ELECTRONIC,
        valid_until=dt.date(2030, 1, 1),
    )
    await enqueue_deliveries(engine, change, [Recipient("hooked-agency", url)])


async def _rows(engine: AsyncEngine) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        rows = (await conn.execute(select(webhook_deliveries))).mappings().all()
    return [dict(r) for r in rows]


async def test_a_name_that_now_resolves_to_a_private_address_is_refused_at_delivery(
    engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    dns = FakeDns({"hooks.agency.example": ["93.184.215.14"]})
    targets = WebhookTargets(resolve=dns)
    url = "https://hooks.agency.example/hook"
    assert (await targets.check(url)).addresses  # what registration saw
    dns.answers["hooks.agency.example"] = ["10.0.0.7"]  # rebound since
    await _queue(engine, url)

    with caplog.at_level(logging.WARNING, logger="hub.webhooks"):
        async with _worker(engine, targets) as worker:
            attempted = await worker.run_once()
            again = await worker.run_once()

    [row] = await _rows(engine)
    assert attempted == 1 and again == 0  # refused once, not retried
    assert (row["state"], row["attempts"]) == ("REFUSED", 1)
    assert "10.0.0.7" in row["last_status"] and "private" in row["last_status"]
    assert any("refused" in r.getMessage() for r in caplog.records)


async def test_one_private_answer_among_public_ones_refuses_the_delivery(
    engine: AsyncEngine,
) -> None:
    dns = FakeDns({"hooks.agency.example": ["93.184.215.14", "169.254.169.254"]})
    await _queue(engine, "https://hooks.agency.example/hook")
    async with _worker(engine, WebhookTargets(resolve=dns)) as worker:
        await worker.run_once()
    [row] = await _rows(engine)
    assert row["state"] == "REFUSED" and "metadata" in row["last_status"]


async def test_a_loopback_target_is_refused_at_delivery_outside_the_demo(
    engine: AsyncEngine,
) -> None:
    receiver = Receiver()
    async with serve(receiver.app()) as base:
        port = httpx.URL(base).port
        await _queue(engine, f"https://localhost:{port}/hook")  # the system resolver
        await _queue(engine, f"http://127.0.0.1:{port}/hook")
        async with _worker(engine, WebhookTargets()) as worker:
            await worker.run_once()
    assert {r["state"] for r in await _rows(engine)} == {"REFUSED"}
    assert receiver.requests == []


async def test_the_demo_delivers_over_http_to_the_loopback_address_it_checked(
    engine: AsyncEngine,
) -> None:
    receiver = Receiver()
    async with serve(receiver.app()) as base:
        port = httpx.URL(base).port
        # A name only the worker's resolver knows: reaching it proves the checked address
        # was used, not a second resolution.
        dns = FakeDns({"hooks.demo.test": ["127.0.0.1"]})
        url = f"http://hooks.demo.test:{port}/hook"
        await _queue(engine, url)
        async with _worker(engine, WebhookTargets(demo=True, resolve=dns)) as worker:
            await worker.run_once()
    [row] = await _rows(engine)
    assert (row["state"], row["last_status"]) == ("DELIVERED", "202")
    [request] = receiver.requests
    assert request.headers["host"] == f"hooks.demo.test:{port}"
    token = jwt.decode(receiver.bodies[0].decode(), _KEY, algorithms=["ES256"])
    assert token.claims["aud"] == url


async def test_a_redirect_is_recorded_and_not_followed(engine: AsyncEngine) -> None:
    receiver = Receiver()
    async with serve(receiver.app()) as base:
        await _queue(engine, base + "/moved")
        async with _worker(engine, WebhookTargets(demo=True)) as worker:
            await worker.run_once()
    [row] = await _rows(engine)
    assert row["last_status"] == "307" and row["state"] == "PENDING"  # retried later, as a 5xx
    assert [r.url.path for r in receiver.requests] == ["/moved"]


async def test_https_to_the_checked_address_still_verifies_the_name(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    key_file, cert_file, ca_pem = _tls_files(tmp_path, "hooks.tls.test")
    trusted = ssl.create_default_context(cadata=ca_pem)
    receiver = Receiver()
    async with serve(
        receiver.app(), ssl_keyfile=str(key_file), ssl_certfile=str(cert_file)
    ) as base:
        port = httpx.URL(base).port
        dns = FakeDns({"hooks.tls.test": ["127.0.0.1"], "impostor.test": ["127.0.0.1"]})
        await _queue(engine, f"https://hooks.tls.test:{port}/hook")
        async with _worker(
            engine, WebhookTargets(demo=True, resolve=dns), httpx.AsyncClient(verify=trusted)
        ) as worker:
            await worker.run_once()
        await _queue(engine, f"https://impostor.test:{port}/hook")  # the certificate's not
        async with _worker(
            engine, WebhookTargets(demo=True, resolve=dns), httpx.AsyncClient(verify=trusted)
        ) as worker:
            await worker.run_once()
    rows = sorted(await _rows(engine), key=lambda r: r["url"])
    assert [(r["url"].split(":")[1], r["state"]) for r in rows] == [
        ("//hooks.tls.test", "DELIVERED"), ("//impostor.test", "PENDING")
    ]
    assert rows[1]["last_status"] == "ConnectError"  # certificate verification failed
    assert [r.headers["host"] for r in receiver.requests] == [f"hooks.tls.test:{port}"]


def _tls_files(directory: Path, name: str) -> tuple[Path, Path, str]:
    """A test certificate authority and a server certificate it issued for `name`."""
    now = dt.datetime.now(dt.UTC)

    def certificate(
        subject: str, key: ec.EllipticCurvePrivateKey, issuer: str,
        signer: ec.EllipticCurvePrivateKey, ca: bool,
    ) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(hours=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName(subject)]), critical=False
            )
        return builder.sign(signer, hashes.SHA256())

    ca_key, server_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(
        ec.SECP256R1()
    )
    ca = certificate("test authority", ca_key, "test authority", ca_key, ca=True)
    server = certificate(name, server_key, "test authority", ca_key, ca=False)
    key_file, cert_file = directory / "server-key.pem", directory / "server-cert.pem"
    key_file.write_bytes(server_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ))
    cert_file.write_bytes(server.public_bytes(serialization.Encoding.PEM))
    return key_file, cert_file, ca.public_bytes(serialization.Encoding.PEM).decode()
