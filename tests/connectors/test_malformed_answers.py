"""A source system answering valid JSON of the wrong shape is unavailable, not a hub crash."""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from connectors.cards import HttpCardSource
from connectors.errors import UpstreamUnavailable
from tests.simulators.servers import serve

SHAPES = [{"cards": []}, {"cards": {"S1": {"cardNumber": 1}}}, {"cards": {"S1": [7]}}, []]


@pytest.mark.parametrize("answer", SHAPES, ids=["list", "not-a-list", "not-a-card", "no-object"])
async def test_a_card_system_answer_of_the_wrong_shape_is_upstream_unavailable(
    answer: object,
) -> None:
    async def cards_batch(request: Request) -> JSONResponse:
        return JSONResponse(answer)

    app = Starlette(routes=[Route("/cards:batch", cards_batch, methods=["POST"])])
    async with serve(app) as url, httpx.AsyncClient() as client:
        with pytest.raises(UpstreamUnavailable, match="malformed"):
            await HttpCardSource(client, url).cards(["S1"])
