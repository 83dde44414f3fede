"""Run one simulated source system as a standalone server (what `hub simulate ...` calls).

It generates the dataset, prepares what the system needs (the WMS signing key, the agency
databases), then serves with uvicorn until interrupted. It never reads settings or the
environment itself: the CLI passes everything in.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Literal

from starlette.applications import Starlette

from simulators.agency import build_agency_app, seed_agency_databases
from simulators.cards import build_cards_app
from simulators.synthetic import AGENCY_REGIONS, Dataset, generate
from simulators.wms import build_wms_app, load_or_create_signing_key

__all__ = ["Serve", "SimulatorKind", "build_simulator_app", "default_agency_urls", "run_simulator"]

SimulatorKind = Literal["wms", "agency", "cards"]
# Serves an app on host:port until interrupted: the hub's `hub.servers.serve_app`, so that every
# server the project starts listens on the same kind of socket (the simulators import no hub).
Serve = Callable[[Starlette, str, int], None]


def default_agency_urls(data_dir: Path) -> dict[str, str]:
    """One SQLite file per demo agency region under `data_dir`."""
    return {
        region: f"sqlite+aiosqlite:///{(data_dir / f'agency-{region}.db').resolve()}"
        for region in AGENCY_REGIONS
    }


def build_simulator_app(
    kind: SimulatorKind, dataset: Dataset, data_dir: Path, agency_urls: Mapping[str, str]
) -> Starlette:
    """The `kind` app over `dataset`; the agency databases must already be seeded."""
    if kind == "wms":
        # Kept on disk so that QR codes printed before a restart still verify after it.
        return build_wms_app(dataset, load_or_create_signing_key(data_dir / "wms-signing-key.json"))
    if kind == "cards":
        return build_cards_app(dataset)
    if kind == "agency":
        return build_agency_app(agency_urls)
    raise ValueError(f"unknown simulator {kind!r}: expected wms, agency or cards")


def run_simulator(
    kind: SimulatorKind,
    host: str,
    port: int,
    data_dir: Path,
    seed: int,
    foreigners: int,
    agency_urls: dict[str, str] | None,
    serve: Serve,
    today: dt.date | None = None,
) -> None:
    """Generate the synthetic data (as of `today`, default the current date) and serve the
    `kind` source system on host:port."""
    data_dir.mkdir(parents=True, exist_ok=True)
    dataset = generate(seed=seed, foreigners=foreigners, today=today)
    urls = agency_urls or default_agency_urls(data_dir)
    app = build_simulator_app(kind, dataset, data_dir, urls)
    if kind == "agency":
        asyncio.run(seed_agency_databases(dataset, urls))
    serve(app, host, port)
