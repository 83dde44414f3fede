"""Fixtures for the simulator suites: one small dataset per session, a fresh server per test.

Servers are per test because the /_sim counters and faults are server state.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

import httpx
import pytest

from simulators import Dataset, build_cards_app, build_wms_app, generate
from tests.simulators.servers import serve

TODAY = dt.date(2025, 6, 1)
SEED = 2025
FOREIGNERS = 400


@pytest.fixture(scope="session")
def dataset() -> Dataset:
    return generate(seed=SEED, foreigners=FOREIGNERS, today=TODAY)


@pytest.fixture
async def wms(dataset: Dataset) -> AsyncIterator[httpx.AsyncClient]:
    """A client bound to a freshly started WMS simulator."""
    async with serve(build_wms_app(dataset)) as url, httpx.AsyncClient(base_url=url) as client:
        yield client


@pytest.fixture
async def cards(dataset: Dataset) -> AsyncIterator[httpx.AsyncClient]:
    """A client bound to a freshly started card management simulator."""
    async with serve(build_cards_app(dataset)) as url, httpx.AsyncClient(base_url=url) as client:
        yield client
