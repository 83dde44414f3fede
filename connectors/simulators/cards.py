"""Simulated SSC card management system: the cards issued for each social security number.

A real HTTP server over a `Dataset`, speaking the wire format of `connectors.wire`. It only
reads; it never invents a card that the dataset does not hold.

    GET  /cards?ssn=...    {"cards": [card]}  (empty list for an unknown SSN)
    POST /cards:batch      {"ssns": [...]} → {"cards": {ssn: [card]}}, every SSN present, <= 500
    GET  /healthz          {"status": "ok"}
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route

from connectors.simulators._http import BadRequest, JSONBody, healthz, read_id_list, simulator_app
from connectors.simulators.synthetic import Dataset
from connectors.wire import card_to_wire

__all__ = ["build_cards_app"]


class _Endpoints:
    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def cards(self, ssn: str) -> list[dict[str, Any]]:
        return [card_to_wire(card) for card in self.dataset.cards.get(ssn, ())]

    async def get_cards(self, request: Request) -> JSONBody:
        ssn = request.query_params.get("ssn")
        if not ssn:
            raise BadRequest("the ssn query parameter is required")
        return JSONBody({"cards": self.cards(ssn)})

    async def batch_cards(self, request: Request) -> JSONBody:
        ssns = await read_id_list(request, "ssns")
        return JSONBody({"cards": {ssn: self.cards(ssn) for ssn in ssns}})


def build_cards_app(dataset: Dataset) -> Starlette:
    """The card management system over `dataset`."""
    api = _Endpoints(dataset)
    routes = [
        Route("/cards", api.get_cards, methods=["GET"]),
        Route("/cards:batch", api.batch_cards, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
    ]
    app = simulator_app(routes)
    app.state.dataset = dataset
    return app
