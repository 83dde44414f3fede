"""Test controls shared by every simulator: request counters and fault injection.

`SimControl` is plain ASGI middleware (no BaseHTTPMiddleware: no extra task per request).
It answers `/_sim/*` itself and passes `/healthz` straight through; neither is ever counted
or faulted. Every other request is counted under "<METHOD> <route path template>" and then
suffers the configured faults, checked in this order: latency, hang, reset, error rate, bad
JSON. It exists for tests and demos of the hub's resilience and must never be mounted in the
hub itself.

    GET    /_sim/stats          {"requests": {...}, "total": n, "traceparents": [...last 50]}
    POST   /_sim/stats/reset    zero the counters
    GET    /_sim/faults         the faults in force
    POST   /_sim/faults         {"latency_ms", "error_rate", "hang", "reset", "bad_json", "seed"}
    DELETE /_sim/faults         clear every fault and release hung requests
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import orjson
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["Faults", "SimControl"]

_TRACEPARENTS_KEPT = 50
_UNCOUNTED = frozenset({"/healthz"})


@dataclass(frozen=True, slots=True)
class Faults:
    latency_ms: int = 0
    error_rate: float = 0.0
    hang: bool = False
    reset: bool = False
    bad_json: bool = False

    @classmethod
    def from_json(cls, data: object) -> Faults:
        """Validate a POST /_sim/faults body; raises ValueError naming the bad field."""
        if not isinstance(data, dict):
            raise ValueError("expected a JSON object")
        known = {f.name for f in fields(cls)} | {"seed"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown fault {unknown[0]!r}")
        return cls(
            latency_ms=int(_number(data, "latency_ms", int, 0, 600_000)),
            error_rate=float(_number(data, "error_rate", float, 0.0, 1.0)),
            hang=_flag(data, "hang"),
            reset=_flag(data, "reset"),
            bad_json=_flag(data, "bad_json"),
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _number(data: dict[str, Any], key: str, kind: type, low: float, high: float) -> float:
    value: object = data.get(key, low)
    allowed: tuple[type, ...] = (int,) if kind is int else (int, float)
    if isinstance(value, bool) or not isinstance(value, allowed):
        raise ValueError(f"{key} must be a {kind.__name__}")
    number = float(value) if isinstance(value, int | float) else low
    if not low <= number <= high:
        raise ValueError(f"{key} must be between {low} and {high}")
    return number


def _flag(data: dict[str, Any], key: str) -> bool:
    value = data.get(key, False)
    if not isinstance(value, bool):
        raise ValueError(f"{key} must be true or false")
    return value


class SimControl:
    """Counts requests by route template and injects the faults set through /_sim/faults."""

    def __init__(self, app: ASGIApp, routes: Sequence[BaseRoute], seed: int = 0) -> None:
        self.app = app
        self.routes = tuple(routes)
        self.faults = Faults()
        self._rng = random.Random(seed)
        self._requests: Counter[str] = Counter()
        self._traceparents: deque[str] = deque(maxlen=_TRACEPARENTS_KEPT)
        self._released = asyncio.Event()
        self._released.set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in _UNCOUNTED:
            await self.app(scope, receive, send)
        elif scope["path"].startswith("/_sim/"):
            await self._control(scope, receive, send)
        else:
            self._count(scope)
            await self._serve_with_faults(scope, receive, send)

    # --- counting -----------------------------------------------------------------------------

    def _count(self, scope: Scope) -> None:
        self._requests[f"{scope['method']} {self._template(scope)}"] += 1
        for name, value in scope["headers"]:
            if name == b"traceparent":
                self._traceparents.append(value.decode("latin-1"))

    def _template(self, scope: Scope) -> str:
        for route in self.routes:
            match, _ = route.matches(scope)
            if match is not Match.NONE:
                return str(getattr(route, "path", scope["path"]))
        return str(scope["path"])

    def stats(self) -> dict[str, Any]:
        return {
            "requests": dict(sorted(self._requests.items())),
            "total": sum(self._requests.values()),
            "traceparents": list(self._traceparents),
        }

    # --- faults -------------------------------------------------------------------------------

    def set_faults(self, faults: Faults, seed: int | None = None) -> None:
        if seed is not None:
            self._rng.seed(seed)
        if faults.hang and self._released.is_set():
            self._released = asyncio.Event()
        self.faults = faults
        if not faults.hang:
            self._released.set()

    async def _serve_with_faults(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.faults.latency_ms:
            await asyncio.sleep(self.faults.latency_ms / 1000)
        if self.faults.hang:
            held = await self._hold(receive)
            if held is None:
                return  # the client gave up; there is nobody to answer
            receive = held
        faults = self.faults
        if faults.reset:
            await _drop_connection(send)
        elif faults.error_rate and self._rng.random() < faults.error_rate:
            await _send_json(send, 503, {"error": "injected_fault"})
        elif faults.bad_json:
            await _send_body(send, 200, b'{"permits": [<html>this is not JSON', b"application/json")
        else:
            await self.app(scope, receive, send)

    async def _hold(self, receive: Receive) -> Receive | None:
        """Wait until the hang is cleared, keeping the request body; None if the client left."""
        buffered: list[Message] = []
        release = asyncio.ensure_future(self._released.wait())
        try:
            while not release.done():
                message = asyncio.ensure_future(receive())
                await asyncio.wait({message, release}, return_when=asyncio.FIRST_COMPLETED)
                if not message.done():
                    message.cancel()
                    break
                if message.result()["type"] == "http.disconnect":
                    return None
                buffered.append(message.result())
        finally:
            release.cancel()
        return _replay(buffered, receive)

    # --- the /_sim/* endpoints ----------------------------------------------------------------

    async def _control(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = (scope["method"], scope["path"])
        if route == ("GET", "/_sim/stats"):
            await _send_json(send, 200, self.stats())
        elif route == ("POST", "/_sim/stats/reset"):
            self._requests.clear()
            self._traceparents.clear()
            await _send_json(send, 200, self.stats())
        elif route == ("GET", "/_sim/faults"):
            await _send_json(send, 200, self.faults.to_json())
        elif route == ("POST", "/_sim/faults"):
            await self._post_faults(receive, send)
        elif route == ("DELETE", "/_sim/faults"):
            self.set_faults(Faults())
            await _send_json(send, 200, self.faults.to_json())
        else:
            await _send_json(send, 404, {"error": "not_found"})

    async def _post_faults(self, receive: Receive, send: Send) -> None:
        try:
            data = orjson.loads(await _read_body(receive))
            faults = Faults.from_json(data)
            seed = data.get("seed")
            if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
                raise ValueError("seed must be an integer")
        except ValueError as exc:  # orjson.JSONDecodeError is a ValueError
            await _send_json(send, 400, {"error": "bad_request", "detail": str(exc)})
            return
        self.set_faults(faults, seed)
        await _send_json(send, 200, faults.to_json())


def _replay(buffered: list[Message], receive: Receive) -> Receive:
    pending = deque(buffered)

    async def replaying() -> Message:
        return pending.popleft() if pending else await receive()

    return replaying


async def _read_body(receive: Receive) -> bytes:
    body = b""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return body
        body += message.get("body", b"")
        if not message.get("more_body", False):
            return body


async def _send_body(send: Send, status: int, body: bytes, media_type: bytes) -> None:
    headers = [(b"content-type", media_type), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _send_json(send: Send, status: int, payload: object) -> None:
    await _send_body(send, status, orjson.dumps(payload), b"application/json")


async def _drop_connection(send: Send) -> None:
    """Make uvicorn close the connection before a single byte of the response is written.

    ASGI has no "abort" message. uvicorn marks the response as started, then validates the
    header names and raises on an invalid one before writing anything; an exception after the
    response started makes it close the transport instead of answering 500. (Starlette's
    ServerErrorMiddleware sees the start message too, so it does not try to answer either.)
    uvicorn logs the exception: that log line is the price of a realistic reset.
    """
    await send({
        "type": "http.response.start",
        "status": 200,
        "headers": [(b"x-sim reset", b"connection dropped on purpose")],
    })
    # Only reached under a server that wrote the headers anyway: fail the exchange all the same.
    raise ConnectionAbortedError("injected fault: connection reset")
