"""Session-wide fixtures for real servers and services (tests use no mocks of our own code).

The simulators run once per session as real loopback servers (HTTP) and real databases
(SQLite, or PostgreSQL when HUB_TEST_DATABASE_URL is set); each hub test gets a fresh hub
database and a private Redis prefix, so tests never see each other's audit records or tokens.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as redis_async
from asgi_lifespan import LifespanManager
from graphql import GraphQLError, parse
from opentelemetry.sdk.trace.export import SpanExporter
from sqlalchemy import event

from auth import AuthService
from hub.app import create_app
from hub.components import Hub
from hub.demo_clients import (
    DEMO_AGENCIES,
    DEMO_PURPOSES,
    OFFICER_PURPOSES,
    register_demo_identity_providers,
    seed_demo_clients,
)
from hub.settings import Settings
from infra.kv import KeyValue
from schema.purposes import root_fields
from simulators import (
    Dataset,
    IdentityProviders,
    build_cards_app,
    build_identity_app,
    build_wms_app,
    generate,
    seed_agency_databases,
)
from tests.services import CHEAP_SECRET_HASH, REDIS_URL, fresh_database, fresh_key_value
from tests.simulators.servers import serve

AGENCY_REGIONS = ("420100", "420500")
# The demo's social-insurance agency of each region: the only one that may enroll its permits.
SI_AGENCY_OF_REGION = {"420100": "si-agency-wuhan", "420500": "si-agency-yichang"}


def si_agency_of(permit_number: str) -> str:
    """The demo client that enrolls this permit: its region's agency (a permit number's region
    is its first six digits)."""
    return SI_AGENCY_OF_REGION[permit_number[:6]]


def purpose_for(client_id: str, query: str) -> str:
    """The purpose a demo agency would send with `query`: the first of its purposes (sorted)
    that covers the root fields the query runs; its first if none does, or if the query is not
    GraphQL (a test of something else then meets that refusal, as it would). A purpose that
    needs an officer is never picked: a client's own token is refused for it."""
    own = next(a for a in DEMO_AGENCIES if a.client_id == client_id).purposes
    names = sorted(own - OFFICER_PURPOSES) or sorted(own)
    try:
        runs = root_fields(parse(query), None)
    except GraphQLError:
        return names[0]
    return next((name for name in names if runs <= DEMO_PURPOSES[name]), names[0])


CASE_REVIEW = "case-review"


async def give_case_review(auth: AuthService, client_id: str = "exit-entry-wuhan") -> str:
    """Register a purpose covering what `investigation` covers but needing no officer, and give
    it to `client_id`: for tests of purposes and refusal order that are not about officers."""
    await auth.add_purpose(CASE_REVIEW, sorted(DEMO_PURPOSES["investigation"]))
    client = await auth.get_client(client_id)
    await auth.set_purposes(client_id, [*client.purposes, CASE_REVIEW])
    return CASE_REVIEW


@pytest.fixture
async def database_url(tmp_path: Path) -> AsyncIterator[str]:
    """An empty hub database for one test (SQLite, or PostgreSQL: HUB_TEST_DATABASE_URL)."""
    async with fresh_database(tmp_path) as url:
        yield url


@pytest.fixture
async def kv() -> AsyncIterator[KeyValue]:
    """An empty key-value store for one test (in-process, or Redis: HUB_TEST_REDIS_URL)."""
    async with fresh_key_value() as store:
        yield store


@dataclass(frozen=True)
class Simulators:
    dataset: Dataset
    wms_url: str
    cards_url: str
    agency_urls: dict[str, str]

    async def stats(self, base_url: str) -> dict[str, Any]:
        async with httpx.AsyncClient() as client:
            response = await client.get(base_url + "/_sim/stats")
            stats: dict[str, Any] = response.json()
            return stats

    async def reset(self) -> None:
        async with httpx.AsyncClient() as client:
            for url in (self.wms_url, self.cards_url):
                await client.post(url + "/_sim/stats/reset")
                await client.delete(url + "/_sim/faults")

    async def upstream_calls(self) -> int:
        return sum([(await self.stats(u))["total"] for u in (self.wms_url, self.cards_url)])


@pytest.fixture(scope="session")
async def simulators(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Simulators]:
    """The three source systems with the demo's generator (smaller), started once."""
    dataset = generate(seed=2025, foreigners=1500, today=dt.date.today())
    tmp = tmp_path_factory.mktemp("agencies")
    async with AsyncExitStack() as stack:
        wms_url = await stack.enter_async_context(serve(build_wms_app(dataset)))
        cards_url = await stack.enter_async_context(serve(build_cards_app(dataset)))
        urls = {
            region: await stack.enter_async_context(fresh_database(tmp, f"agency{region}"))
            for region in AGENCY_REGIONS
        }
        await seed_agency_databases(dataset, urls)
        yield Simulators(dataset, wms_url, cards_url, urls)


@dataclass
class HubClient:
    """Talks to one hub over HTTP as the demo agencies would."""

    http: httpx.AsyncClient
    hub: Hub
    secrets: dict[str, str]
    tokens: dict[str, str] = field(default_factory=dict)

    async def token(self, client_id: str) -> str:
        if client_id not in self.tokens:
            response = await self.http.post(
                "/oauth/token", data={"grant_type": "client_credentials"},
                auth=(client_id, self.secrets[client_id]),
            )
            assert response.status_code == 200, response.text
            self.tokens[client_id] = response.json()["access_token"]
        return self.tokens[client_id]

    async def graphql(
        self, client_id: str | None, query: str, variables: dict[str, Any] | None = None,
        *, purpose: str | None = None, headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        sent = dict(headers or {})
        if client_id is not None:
            sent["authorization"] = f"Bearer {await self.token(client_id)}"
            sent["x-purpose-of-use"] = purpose_for(client_id, query) if purpose is None else purpose
        return await self.http.post(
            "/graphql", json={"query": query, "variables": variables}, headers=sent
        )


def hub_settings(
    simulators: Simulators, database_url: str, tmp_path: Path, prefix: str
) -> Settings:
    return Settings(
        database_url=database_url,
        redis_url=REDIS_URL,
        redis_prefix=prefix,
        data_dir=tmp_path,
        wms_url=simulators.wms_url,
        cards_url=simulators.cards_url,
        agency_databases=simulators.agency_urls,
        issuer="http://127.0.0.1:8000",
        **CHEAP_SECRET_HASH,
    )


async def _drop_prefix(prefix: str) -> None:
    if REDIS_URL is None:
        return
    client = redis_async.Redis.from_url(REDIS_URL)
    keys = [k async for k in client.scan_iter(match=prefix + "*", count=500)]
    if keys:
        await client.delete(*keys)
    await client.aclose()


# The token endpoint the simulated identity providers name as their assertions' audience.
HUB_TOKEN_ENDPOINT = "http://127.0.0.1:8000/oauth/token"


@asynccontextmanager
async def demo_identity_providers(
    auth: AuthService, dataset: Dataset
) -> AsyncIterator[tuple[IdentityProviders, str, httpx.AsyncClient]]:
    """The simulated identity providers (agencies' officer sign-on, the e-SSC real-name check)
    served over HTTP and registered with `auth` as the demo registers them: the providers,
    their base URL, and a client of it."""
    identity = IdentityProviders(dataset, HUB_TOKEN_ENDPOINT)
    async with serve(build_identity_app(identity)) as url, httpx.AsyncClient(base_url=url) as idp:
        await register_demo_identity_providers(
            auth, lambda name: (identity.issuer(url, name), identity.jwks_url(url, name))
        )
        yield identity, url, idp


@asynccontextmanager
async def open_hub(
    simulators: Simulators,
    database_url: str,
    tmp_path: Path,
    span_exporter: SpanExporter | None = None,
    upstream_clock: Callable[[], float] = time.monotonic,
    **overrides: Any,
) -> AsyncIterator[HubClient]:
    """A fresh hub (own database, own Redis prefix, settings `overrides`), demo agencies in."""
    prefix = f"test:{uuid.uuid4().hex[:12]}:"
    settings = hub_settings(simulators, database_url, tmp_path, prefix)
    if overrides:
        settings = Settings(**(settings.model_dump() | overrides))
    app = create_app(settings, span_exporter=span_exporter, upstream_clock=upstream_clock)
    await simulators.reset()
    try:
        async with LifespanManager(app, startup_timeout=30) as manager, httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app), base_url="http://127.0.0.1:8000"
        ) as http:
            hub: Hub = app.state.hub
            seeded = await seed_demo_clients(hub.auth)
            secrets = {str(c["client_id"]): str(c["client_secret"]) for c in seeded}
            yield HubClient(http, hub, secrets)
    finally:
        await _drop_prefix(prefix)


@pytest.fixture
async def hub(
    simulators: Simulators, database_url: str, tmp_path: Path
) -> AsyncIterator[HubClient]:
    """A fresh hub (own database, own Redis prefix) with the demo agencies registered."""
    async with open_hub(simulators, database_url, tmp_path) as client:
        yield client


class SqlCounter:
    """Counts the statements each agency engine sends to its database (observed, not mocked)."""

    def __init__(self, hub: Hub) -> None:
        self.counts: dict[str, int] = {}
        for region, engine in hub.enrollments.engines.items():
            event.listen(engine.sync_engine, "before_cursor_execute", self._counter(region))

    def _counter(self, region: str) -> Any:
        def count(*_: Any) -> None:
            self.counts[region] = self.counts.get(region, 0) + 1

        return count
