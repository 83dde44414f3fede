"""Fixtures for the auth suites: a hub AuthService on the per-test database and store, an
ASGI app with its routes plus one protected route, and a clock the tests can move forward."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from auth import AuthConfig, AuthError, AuthEvent, AuthService
from infra.kv import KeyValue
from tests.services import CHEAP_SECRET_HASH

ISSUER = "https://hub.test"
AUDIENCE = "https://hub.test/graphql"
TOKEN_URL = ISSUER + "/oauth/token"


class Clock:
    """Real time plus an offset the test moves forward (never backward)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


def config(**overrides: Any) -> AuthConfig:
    values: dict[str, Any] = {
        "issuer": ISSUER,
        "audience": AUDIENCE,
        "token_ttl_seconds": 600,
        "leeway_seconds": 30,
        "key_publish_lead_seconds": 120,
        "key_grace_seconds": 60,
        "key_refresh_seconds": 5,
        **CHEAP_SECRET_HASH,
    }
    values.update(overrides)
    return AuthConfig(**values)


@dataclass
class Hub:
    """One hub instance under test."""

    service: AuthService
    http: httpx.AsyncClient
    events: list[AuthEvent] = field(default_factory=list)

    async def token(self, client_id: str, secret: str, **form: str) -> httpx.Response:
        data = {"grant_type": "client_credentials", **form}
        return await self.http.post("/oauth/token", data=data, auth=(client_id, secret))

    async def access_token(self, client_id: str, secret: str, **form: str) -> str:
        response = await self.token(client_id, secret, **form)
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])

    async def call(
        self, token: str | None = None, purpose: str | None = "residence-permit", **headers: str
    ) -> httpx.Response:
        if token is not None:
            headers.setdefault("Authorization", f"Bearer {token}")
        if purpose is not None:
            headers["X-Purpose-Of-Use"] = purpose
        return await self.http.get("/protected", headers=headers)

    async def snapshot(self) -> tuple[Any, ...]:
        """What a refused request must leave unchanged."""
        clients = await self.service.list_clients()
        issued = [e for e in self.events if e.kind in ("token_issued", "token_revoked")]
        return tuple(clients), json.dumps(self.service.jwks(), sort_keys=True), len(issued)

    def mint(self, claims: dict[str, Any], **header: Any) -> str:
        """A token signed with the hub's current key, with any claims (for forged cases)."""
        key = self.service._ring.signing_key()
        return jwt.encode({"alg": key.alg, "kid": key.kid, "typ": "at+jwt", **header}, claims,
                          key.private)

    def valid_claims(self, client_id: str, **overrides: Any) -> dict[str, Any]:
        now = int(self.service._clock())
        claims = {"iss": ISSUER, "sub": client_id, "aud": AUDIENCE, "iat": now, "exp": now + 300,
                  "jti": f"test-{now}-{len(self.events)}", "client_id": client_id,
                  "scope": "permit:validity"}
        claims.update(overrides)
        return claims


def protected_app(service: AuthService) -> Starlette:
    async def protected(request: Request) -> Response:
        try:
            principal = await service.authenticate(request.headers.get("authorization"))
            purpose = service.purpose_of_use(principal, request.headers.get("x-purpose-of-use"))
        except AuthError as exc:
            body = {"code": exc.code, "error": exc.error, "description": exc.description}
            headers = {"WWW-Authenticate": exc.www_authenticate()} if exc.status == 401 else {}
            return JSONResponse(body, status_code=exc.status, headers=headers)
        return JSONResponse({
            "client_id": principal.client_id, "agency": principal.agency,
            "scopes": sorted(principal.scopes), "purpose": purpose, "issuer": principal.issuer,
        })

    return Starlette(routes=[*service.routes(), Route("/protected", protected)])


async def refused_within_a_second(hub: Hub, token: str) -> httpx.Response:
    """`hub.call(token)` until it is refused, for up to a second (another instance's change
    reaches this one through the shared-state stream); the last answer."""
    for _ in range(20):
        response = await hub.call(token)
        if response.status_code != 200:
            return response
        await asyncio.sleep(0.05)
    return response


HubFactory = Callable[..., Awaitable[Hub]]

# The purposes the tests register clients for: a client may name registered purposes only.
TEST_PURPOSES = ("audit", "benefits", "enrollment", "investigation", "p", "residence-permit")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(database_url)
    yield engine
    await engine.dispose()


@pytest.fixture
async def make_hub(engine: AsyncEngine, kv: KeyValue, clock: Clock) -> AsyncIterator[HubFactory]:
    """Start hub instances sharing one database, one store and one clock."""
    opened: list[Hub] = []

    async def make(cfg: AuthConfig | None = None, http: httpx.AsyncClient | None = None) -> Hub:
        events: list[AuthEvent] = []

        async def record(event: AuthEvent) -> None:
            events.append(event)

        service = AuthService(engine, kv, cfg or config(), http=http, on_event=record, clock=clock)
        await service.start(create_tables=True)
        registered = {p.name for p in await service.purposes.list()}
        for name in sorted(set(TEST_PURPOSES) - registered):  # instances share the database
            await service.purposes.add(name, ["permit"])
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=protected_app(service)), base_url=ISSUER
        )
        hub = Hub(service, client, events)
        opened.append(hub)
        return hub

    yield make
    for hub in opened:
        await hub.http.aclose()
        await hub.service.close()


@pytest.fixture
async def hub(make_hub: HubFactory) -> Hub:
    return await make_hub()


@dataclass(frozen=True)
class Agency:
    client_id: str
    secret: str


@pytest.fixture
async def exit_entry(hub: Hub) -> Agency:
    _, secret = await hub.service.add_client(
        "exit-entry-wuhan", "Wuhan Exit-Entry Administration",
        ["permit:validity", "permit:holder", "card:status", "events:subscribe"],
        ["residence-permit", "investigation"],
    )
    assert secret is not None
    return Agency("exit-entry-wuhan", secret)


def b64(data: bytes | dict[str, Any]) -> str:
    raw = json.dumps(data).encode() if isinstance(data, dict) else data
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def agency_key() -> ECKey:
    return ECKey.generate_key("P-256", {"kid": "agency-1", "alg": "ES256"}, private=True)
