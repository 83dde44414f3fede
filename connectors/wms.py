"""Work Management System connector over its HTTP JSON API. Knows nothing of GraphQL."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from connectors._http import map_http_errors
from connectors.records import Permit, PermitEvent
from connectors.wire import event_from_wire, permit_from_wire

UPSTREAM = "wms"


class HttpPermitSource:
    def __init__(self, client: httpx.AsyncClient, base_url: str) -> None:
        self._client = client
        self._base = base_url.rstrip("/")

    async def _post(self, path: str, body: dict[str, Any]) -> Any:
        with map_http_errors(UPSTREAM):
            response = await self._client.post(self._base + path, json=body)
            response.raise_for_status()
            return response.json()

    async def permits(self, numbers: Sequence[str]) -> Mapping[str, Permit]:
        if not numbers:
            return {}
        payload = await self._post("/permits:batch", {"numbers": list(numbers)})
        with map_http_errors(UPSTREAM):
            found = [permit_from_wire(p) for p in payload["permits"] if p is not None]
        return {p.number: p for p in found}

    async def histories(self, numbers: Sequence[str]) -> Mapping[str, tuple[PermitEvent, ...]]:
        if not numbers:
            return {}
        payload = await self._post("/permits/history:batch", {"numbers": list(numbers)})
        with map_http_errors(UPSTREAM):
            return {
                number: tuple(event_from_wire(e) for e in events)
                for number, events in payload["history"].items()
            }

    async def permits_of_holders(self, holder_ids: Sequence[str]) -> Mapping[str, tuple[str, ...]]:
        if not holder_ids:
            return {}
        payload = await self._post("/foreigners/permits:batch", {"ids": list(holder_ids)})
        with map_http_errors(UPSTREAM):
            return {k: tuple(str(n) for n in v) for k, v in payload["permits"].items()}

    async def jwks(self) -> dict[str, Any]:
        with map_http_errors(UPSTREAM):
            response = await self._client.get(self._base + "/.well-known/jwks.json")
            response.raise_for_status()
            keys: dict[str, Any] = response.json()
            return keys

    async def ping(self) -> bool:
        try:
            response = await self._client.get(self._base + "/healthz")
        except httpx.HTTPError:
            return False
        return response.status_code == 200
