"""Card management system connector over its HTTP JSON API. Knows nothing of GraphQL.

Reads are batched (`cards`: one call per batch of SSNs). Writes are never retried here: an
application batch is one call whose idempotency keys make a retry by the caller safe, and a
status change is a compare-and-set on the status the caller read. A 409 from the card system
becomes `WriteConflict` (see `connectors._http`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import httpx
import orjson

from connectors._http import map_http_errors
from connectors.errors import WriteConflict
from connectors.records import Card, CardApplication, CardApplicationResult, CardStatus
from connectors.resilience import Guard, Policy
from connectors.wire import (
    WireFormatError,
    application_result_from_wire,
    application_to_wire,
    card_from_wire,
)

__all__ = ["HttpCardSource"]

UPSTREAM = "cards"


class HttpCardSource:
    def __init__(
        self, client: httpx.AsyncClient, base_url: str, guard: Guard | None = None
    ) -> None:
        self._client = client
        self._base = base_url.rstrip("/")
        self.guard = guard or Guard(UPSTREAM, Policy())

    async def cards(self, ssns: Sequence[str]) -> Mapping[str, tuple[Card, ...]]:
        if not ssns:
            return {}
        return await self.guard.read(lambda: self._cards(ssns))

    async def _cards(self, ssns: Sequence[str]) -> Mapping[str, tuple[Card, ...]]:
        with map_http_errors(UPSTREAM):
            response = await self._client.post(
                self._base + "/cards:batch", json={"ssns": list(ssns)}
            )
            response.raise_for_status()
            by_ssn = orjson.loads(response.content)["cards"]  # a page of cards: orjson is faster
            return {ssn: tuple(card_from_wire(c) for c in cards) for ssn, cards in by_ssn.items()}

    async def card(self, number: str) -> Card | None:
        """One card by number; None if the card system has no such card."""
        return await self.guard.read(lambda: self._card(number))

    async def _card(self, number: str) -> Card | None:
        with map_http_errors(UPSTREAM):
            response = await self._client.get(f"{self._base}/cards/{number}")
            if response.status_code == 404:
                return None
            response.raise_for_status()
            return card_from_wire(response.json()["card"])

    async def apply(
        self, applications: Sequence[CardApplication], batch_key: str, batch_hash: str
    ) -> list[CardApplicationResult]:
        """Apply for every card in one call; one result per application, in order.

        The same `batch_key` with another `batch_hash` is a `WriteConflict` for the whole call.
        """
        if not applications:
            return []
        body = {
            "batchKey": batch_key,
            "batchHash": batch_hash,
            "applications": [application_to_wire(a) for a in applications],
        }

        async def apply() -> list[CardApplicationResult]:
            with map_http_errors(UPSTREAM):
                response = await self._client.post(self._base + "/cards:apply", json=body)
                response.raise_for_status()
                results = [application_result_from_wire(r) for r in response.json()["results"]]
                if len(results) != len(applications):
                    raise WireFormatError("one result per application expected")
            return results

        return await self.guard.write(apply)

    async def change_status(
        self, number: str, from_: CardStatus, to: CardStatus, reason: str | None
    ) -> Card:
        """Move the card from `from_` to `to`; `WriteConflict` if it is no longer at `from_`."""
        body = {"from": from_.value, "to": to.value, "reason": reason}

        async def change() -> Card:
            with map_http_errors(UPSTREAM):
                url = f"{self._base}/cards/{number}/status"
                response = await self._client.post(url, json=body)
                if response.status_code == 404:
                    raise WriteConflict(UPSTREAM, "the card system has no such card")
                response.raise_for_status()
                return card_from_wire(response.json()["card"])

        return await self.guard.write(change)

    async def ping(self) -> bool:
        try:
            response = await self._client.get(self._base + "/healthz")
        except httpx.HTTPError:
            return False
        return response.status_code == 200
