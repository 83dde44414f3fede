"""`hub demo`: the embedded default. Simulated source systems, synthetic data, the hub; one command.

The simulators are real servers on loopback ports and real SQLite databases, so the hub talks
to them exactly as it would to the agencies' systems. Demo secrets exist only here.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette

from hub.app import create_app
from hub.components import Hub
from hub.demo_clients import (
    DEMO_AGENCIES,
    ESSC_APP,
    register_demo_identity_providers,
    seed_demo_clients,
    seed_demo_purposes,
)
from hub.servers import bind, new_server, port_of
from hub.settings import Settings
from simulators import (
    Dataset,
    IdentityProviders,
    build_cards_app,
    build_identity_app,
    build_wms_app,
    enrolled_among,
    generate,
    load_or_create_signing_key,
    qr_samples,
    seed_agency_databases,
)
from simulators.wms import publish_to_hub

__all__ = ["DEMO_REGIONS", "demo_servers", "run_demo"]

DEMO_REGIONS = ("420100", "420500")
log = logging.getLogger("hub.demo")


def _write_json(path: Path, content: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(content, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


class DemoStateMismatch(Exception):
    """The hub database has the demo agencies but their secrets file is gone."""


def _seeder(
    clients_file: Path, wms_app: Starlette, hub_url: str, identity_url: str
) -> Callable[[Hub], Awaitable[None]]:
    """Seed the demo clients once (a data directory from before the e-SSC app gains it), trust
    the simulated identity providers at their current address, then let the simulated WMS push
    its events to the hub."""

    async def seed(hub: Hub) -> None:
        await seed_demo_purposes(hub.auth)
        known = {c.client_id for c in await hub.auth.list_clients()}
        missing = [a for a in (*DEMO_AGENCIES, ESSC_APP) if a.client_id not in known]
        existing = clients_file.exists()  # noqa: ASYNC240 (once, at start-up)
        if known & {a.client_id for a in DEMO_AGENCIES} and not existing:
            raise DemoStateMismatch(
                f"{clients_file} is missing but the demo agencies exist: delete the data "
                "directory to start the demo afresh"
            )
        if missing:
            earlier = json.loads(clients_file.read_text(encoding="utf-8")) if existing else []  # noqa: ASYNC240
            _write_json(clients_file, earlier + await seed_demo_clients(hub.auth, missing))
            log.warning("demo secrets written to %s (demo mode only)", clients_file)
        await register_demo_identity_providers(
            hub.auth, lambda name: (IdentityProviders.issuer(identity_url, name),
                                    IdentityProviders.jwks_url(identity_url, name))
        )
        clients = json.loads(clients_file.read_text(encoding="utf-8"))  # noqa: ASYNC240
        wms = next(c for c in clients if c["client_id"] == "wms")
        publish_to_hub(wms_app, hub_url, wms["client_id"], wms["client_secret"])

    return seed



async def _still_unenrolled(
    dataset: Dataset, agency_urls: dict[str, str], data_dir: Path
) -> str:
    """The first unenrolled sample the agencies have not enrolled since: the data folder
    outlives a restart, and so does a newcomer's enrollment of the last sample."""
    candidates = dataset.unenrolled_candidates
    enrolled = await enrolled_among(agency_urls, candidates)
    fresh = [number for number in candidates if number not in enrolled]
    if not fresh:
        log.warning("every unenrolled sample was enrolled; delete %s to start afresh", data_dir)
        return candidates[0]
    return fresh[0]


def _identity_samples(dataset: Dataset, identity_url: str) -> dict[str, str]:
    """Where the demo's officers and foreigner get the assertions they exchange, and who."""
    permit = dataset.permits[dataset.samples["valid_permit"]]
    return {
        "officer_assertion_url": identity_url + "/officers/assertion",
        "essc_assertion_url": identity_url + "/essc/assertion",
        "essc_permit": permit.number,
        "essc_name": permit.holder.name,
    }


Listener = tuple[uvicorn.Server, socket.socket]


async def demo_servers(
    host: str, port: int, data_dir: Path, seed: int, foreigners: int,
    hub_socket: socket.socket | None = None,
) -> tuple[Settings, list[Listener]]:
    """The demo's data prepared and its servers made, bound, not yet serving: the simulated
    WMS, the simulated card system, the identity providers, then the hub."""
    data_dir = data_dir.resolve()  # noqa: ASYNC240 (start-up, nothing is served yet)
    demo_dir = data_dir / "demo"
    demo_dir.mkdir(parents=True, exist_ok=True)
    dataset = generate(seed=seed, foreigners=foreigners)
    agency_urls = {r: f"sqlite+aiosqlite:///{data_dir / f'agency-{r}.db'}" for r in DEMO_REGIONS}
    await seed_agency_databases(dataset, agency_urls)

    wms_app = build_wms_app(dataset, load_or_create_signing_key(data_dir / "wms-signing-key.json"))
    wms_sock, cards_sock = bind("127.0.0.1", 0), bind("127.0.0.1", 0)
    identity_sock = bind("127.0.0.1", 0)
    identity_url = f"http://127.0.0.1:{port_of(identity_sock)}"
    samples = dict(dataset.samples)
    samples.update(qr_samples(wms_app, dataset, 7 * 86400))
    samples["unenrolled_valid_permit"] = await _still_unenrolled(dataset, agency_urls, data_dir)
    samples.update(_identity_samples(dataset, identity_url))
    _write_json(demo_dir / "samples.json", samples)

    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{data_dir / 'hub.db'}",
        data_dir=data_dir,
        wms_url=f"http://127.0.0.1:{port_of(wms_sock)}",
        cards_url=f"http://127.0.0.1:{port_of(cards_sock)}",
        agency_databases=agency_urls,
        issuer=f"http://{host}:{port}",
        demo=True,
        request_log=True,
    )
    hub_sock = hub_socket if hub_socket is not None else bind(host, port)
    loopback = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104
    hub_url = f"http://{loopback}:{port_of(hub_sock)}"
    timeout = settings.request_header_timeout_seconds
    # The assertions' audience is the hub's token endpoint, as the hub names it.
    identity = IdentityProviders(dataset, settings.auth_config().token_endpoint)
    seeder = _seeder(demo_dir / "clients.json", wms_app, hub_url, identity_url)
    servers: list[Listener] = [
        (new_server(wms_app, header_timeout=timeout), wms_sock),
        (new_server(build_cards_app(dataset), header_timeout=timeout), cards_sock),
        (new_server(build_identity_app(identity), header_timeout=timeout), identity_sock),
        (
            new_server(
                create_app(settings, seeder),
                log_level="info",
                forwarded_allow_ips=settings.forwarded_allow_ips(),
                header_timeout=timeout,
            ),
            hub_sock,
        ),
    ]
    return settings, servers


async def run_demo(
    host: str, port: int, data_dir: Path, seed: int, foreigners: int,
    hub_socket: socket.socket | None = None,
) -> None:
    settings, servers = await demo_servers(host, port, data_dir, seed, foreigners, hub_socket)
    demo_dir = data_dir.resolve() / "demo"  # noqa: ASYNC240 (start-up, nothing is served yet)
    identity_url = f"http://127.0.0.1:{port_of(servers[2][1])}"
    print(f"permit-hub demo on http://{host}:{port}/graphql")
    print(f"  agencies' ids and secrets: {demo_dir / 'clients.json'}")
    print(f"  identifiers to try:        {demo_dir / 'samples.json'}")
    print("  a first query:             README.md, \"A first query\"")
    print(f"simulated WMS at {settings.wms_url} (POST /admin/permits/<number>/changes pushes "
          f"an event), card system at {settings.cards_url}, identity providers at "
          f"{identity_url} (officers, e-SSC)")
    print(f"auditor's console at http://{host}:{port}/audit/ (client auditor-hubei, its secret "
          f"in {demo_dir / 'clients.json'})")
    await asyncio.gather(*(server.serve(sockets=[sock]) for server, sock in servers))
