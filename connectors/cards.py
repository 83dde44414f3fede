"""Card management system connector over its HTTP JSON API. Knows nothing of GraphQL."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import httpx

from connectors._http import map_http_errors
from connectors.records import Card
from connectors.wire import card_from_wire

UPSTREAM = "cards"


class HttpCardSource:
    def __init__(self, client: httpx.AsyncClient, base_url: str) -> None:
        self._client = client
        self._base = base_url.rstrip("/")

    async def cards(self, ssns: Sequence[str]) -> Mapping[str, tuple[Card, ...]]:
        if not ssns:
            return {}
        with map_http_errors(UPSTREAM):
            response = await self._client.post(
                self._base + "/cards:batch", json={"ssns": list(ssns)}
            )
            response.raise_for_status()
            by_ssn = response.json()["cards"]
            return {ssn: tuple(card_from_wire(c) for c in cards) for ssn, cards in by_ssn.items()}

    async def ping(self) -> bool:
        try:
            response = await self._client.get(self._base + "/healthz")
        except httpx.HTTPError:
            return False
        return response.status_code == 200
