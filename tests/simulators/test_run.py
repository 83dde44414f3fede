from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from simulators import (
    Dataset,
    build_simulator_app,
    default_agency_urls,
    seed_agency_databases,
)
from tests.simulators.servers import serve


async def test_agency_simulator_serves_its_default_sqlite_databases(
    tmp_path: Path, dataset: Dataset
) -> None:
    urls = default_agency_urls(tmp_path)
    assert set(urls) == {"420100", "420500"}
    await seed_agency_databases(dataset, urls)
    assert (tmp_path / "agency-420100.db").exists() and (tmp_path / "agency-420500.db").exists()
    app = build_simulator_app("agency", dataset, tmp_path, urls)
    async with serve(app) as base, httpx.AsyncClient(base_url=base) as client:
        assert (await client.get("/healthz")).json()["status"] == "ok"
        assert (await client.get("/regions")).json() == {"regions": urls}


def test_wms_simulator_keeps_its_signing_key_across_restarts(
    tmp_path: Path, dataset: Dataset
) -> None:
    first = build_simulator_app("wms", dataset, tmp_path, {})
    second = build_simulator_app("wms", dataset, tmp_path, {})
    assert first.state.signing_key.kid == second.state.signing_key.kid


def test_unknown_simulator_is_refused(tmp_path: Path, dataset: Dataset) -> None:
    with pytest.raises(ValueError, match="unknown simulator"):
        build_simulator_app("printer", dataset, tmp_path, {})  # type: ignore[arg-type]
