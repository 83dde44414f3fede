"""`hub demo`: the embedded default. Simulated source systems, synthetic data, the hub; one command.

The simulators are real servers on loopback ports and real SQLite databases, so the hub talks
to them exactly as it would to the agencies' systems. Demo secrets exist only here.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from starlette.applications import Starlette

from hub.app import create_app
from hub.components import Hub
from hub.demo_clients import DEMO_AGENCIES, seed_demo_clients
from hub.servers import bind, new_server, port_of
from hub.settings import Settings
from simulators import (
    build_cards_app,
    build_wms_app,
    generate,
    load_or_create_signing_key,
    qr_samples,
    seed_agency_databases,
)
from simulators.wms import publish_to_hub

__all__ = ["DEMO_REGIONS", "run_demo"]

DEMO_REGIONS = ("420100", "420500")
log = logging.getLogger("hub.demo")


def _write_json(path: Path, content: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(content, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


class DemoStateMismatch(Exception):
    """The hub database has the demo agencies but their secrets file is gone."""


def _seeder(
    clients_file: Path, wms_app: Starlette, hub_url: str
) -> Callable[[Hub], Awaitable[None]]:
    """Seed the demo agencies once, then let the simulated WMS push its events to the hub."""

    async def seed(hub: Hub) -> None:
        known = {c.client_id for c in await hub.auth.list_clients()}
        if all(a.client_id in known for a in DEMO_AGENCIES):
            if not clients_file.exists():  # noqa: ASYNC240 (once, at start-up)
                raise DemoStateMismatch(
                    f"{clients_file} is missing but the demo agencies exist: delete the data "
                    "directory to start the demo afresh"
                )
        else:
            _write_json(clients_file, await seed_demo_clients(hub.auth))
            log.warning("demo secrets written to %s (demo mode only)", clients_file)
        clients = json.loads(clients_file.read_text(encoding="utf-8"))  # noqa: ASYNC240
        wms = next(c for c in clients if c["client_id"] == "wms")
        publish_to_hub(wms_app, hub_url, wms["client_id"], wms["client_secret"])

    return seed


async def run_demo(host: str, port: int, data_dir: Path, seed: int, foreigners: int) -> None:
    data_dir = data_dir.resolve()  # noqa: ASYNC240 (start-up, nothing is served yet)
    demo_dir = data_dir / "demo"
    demo_dir.mkdir(parents=True, exist_ok=True)
    dataset = generate(seed=seed, foreigners=foreigners)
    agency_urls = {r: f"sqlite+aiosqlite:///{data_dir / f'agency-{r}.db'}" for r in DEMO_REGIONS}
    await seed_agency_databases(dataset, agency_urls)

    wms_app = build_wms_app(dataset, load_or_create_signing_key(data_dir / "wms-signing-key.json"))
    wms_sock, cards_sock = bind("127.0.0.1", 0), bind("127.0.0.1", 0)
    samples = dict(dataset.samples)
    samples.update(qr_samples(wms_app, dataset, 7 * 86400))
    _write_json(demo_dir / "samples.json", samples)

    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{data_dir / 'hub.db'}",
        data_dir=data_dir,
        wms_url=f"http://127.0.0.1:{port_of(wms_sock)}",
        cards_url=f"http://127.0.0.1:{port_of(cards_sock)}",
        agency_databases=agency_urls,
        issuer=f"http://{host}:{port}",
        demo=True,
    )
    hub_sock = bind(host, port)
    loopback = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104
    hub_url = f"http://{loopback}:{port_of(hub_sock)}"
    timeout = settings.request_header_timeout_seconds
    servers = [
        (new_server(wms_app, header_timeout=timeout), wms_sock),
        (new_server(build_cards_app(dataset), header_timeout=timeout), cards_sock),
        (
            new_server(
                create_app(settings, _seeder(demo_dir / "clients.json", wms_app, hub_url)),
                log_level="info",
                forwarded_allow_ips=settings.forwarded_allow_ips(),
                header_timeout=timeout,
            ),
            hub_sock,
        ),
    ]
    print(f"permit-hub demo on http://{host}:{port}/graphql (samples in {demo_dir})")
    print(f"simulated WMS at {settings.wms_url} (POST /admin/permits/<number>/changes pushes "
          f"an event), card system at {settings.cards_url}")
    print(f"auditor's console at http://{host}:{port}/audit/ (client auditor-hubei, its secret "
          f"in {demo_dir / 'clients.json'})")
    await asyncio.gather(*(server.serve(sockets=[sock]) for server, sock in servers))
