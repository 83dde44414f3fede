"""Simulated Work Management System: permits, their history, holders' permits, signed QR codes.

A real HTTP server over a `Dataset`, speaking the wire format of `connectors.wire`. QR
payloads are compact JWS (ES256, with `kid`) signed by joserfc with the WMS's own key, whose
public half is served at /.well-known/jwks.json. This module never hand-rolls cryptography
and never serves the private key.

    GET  /permits/{number}                 permit, or 404 {"error": "not_found"}
    POST /permits:batch                    {"numbers": [...]} → {"permits": [permit | null, ...]}
    POST /permits/history:batch            {"numbers": [...]} → {"history": {number: [event]}}
    GET  /permits/{number}/history         {"history": [event]}, or 404
    POST /foreigners/permits:batch         {"ids": [...]} → {"permits": {holderId: [number]}}
    GET  /permits/{number}/qr?ttl=SECONDS  {"payload": "<compact JWS>"}, or 404
    GET  /.well-known/jwks.json            {"keys": [public JWK]}
    GET  /healthz                          {"status": "ok"}
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

import orjson
from joserfc import jwk, jwt
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route

from connectors.simulators._http import (
    BadRequest,
    JSONBody,
    healthz,
    not_found,
    read_id_list,
    simulator_app,
)
from connectors.simulators.synthetic import Dataset
from connectors.wire import event_to_wire, permit_to_wire

__all__ = [
    "QR_ISSUER",
    "build_wms_app",
    "generate_signing_key",
    "load_or_create_signing_key",
    "qr_payload",
    "qr_samples",
    "wms_jwks",
]

QR_ISSUER = "wms"
QR_ALGORITHM = "ES256"
DEFAULT_QR_TTL = 300
MAX_QR_TTL = 7 * 24 * 3600


def generate_signing_key() -> jwk.ECKey:
    """A fresh P-256 key for ES256, its `kid` the RFC 7638 thumbprint."""
    return jwk.ECKey.generate_key(
        "P-256", parameters={"alg": QR_ALGORITHM, "use": "sig"}, auto_kid=True
    )


def load_or_create_signing_key(path: Path) -> jwk.ECKey:
    """The key stored at `path` (private JWK), created there (mode 0600) on first use."""
    if path.exists():
        return jwk.ECKey.import_key(orjson.loads(path.read_bytes()))
    key = generate_signing_key()
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(orjson.dumps(key.as_dict(private=True)))
    return key


def wms_jwks(key: jwk.ECKey) -> dict[str, Any]:
    return {"keys": [key.as_dict(private=False)]}


def _key_of(app_or_key: Starlette | jwk.ECKey) -> jwk.ECKey:
    key: jwk.ECKey
    key = app_or_key if isinstance(app_or_key, jwk.ECKey) else app_or_key.state.signing_key
    key.ensure_kid()  # a verifier picks the key from the served JWKS by kid
    return key


def qr_payload(
    app_or_key: Starlette | jwk.ECKey,
    number: str,
    ttl_seconds: int = DEFAULT_QR_TTL,
    now: dt.datetime | None = None,
) -> str:
    """The compact JWS a permit's QR code carries: {sub, iat, exp, iss: "wms"}, ES256 with kid."""
    key = _key_of(app_or_key)
    issued = int((now or dt.datetime.now(dt.UTC)).timestamp())
    claims = {"sub": number, "iat": issued, "exp": issued + ttl_seconds, "iss": QR_ISSUER}
    header = {"alg": QR_ALGORITHM, "typ": "JWT", "kid": key.kid}
    return jwt.encode(header, claims, key, algorithms=[QR_ALGORITHM])


def qr_samples(
    app_or_key: Starlette | jwk.ECKey,
    dataset: Dataset,
    ttl_seconds: int,
    now: dt.datetime | None = None,
) -> dict[str, str]:
    """The demo's `qr_payload_valid` and `qr_payload_cancelled` sample entries."""
    samples = dataset.samples
    return {
        f"qr_payload_{kind}": qr_payload(app_or_key, samples[f"{kind}_permit"], ttl_seconds, now)
        for kind in ("valid", "cancelled")
    }


class _Endpoints:
    def __init__(self, dataset: Dataset, key: jwk.ECKey) -> None:
        self.dataset = dataset
        self.key = key
        self._wire: dict[str, dict[str, Any]] = {}

    def permit(self, number: str) -> dict[str, Any] | None:
        wire = self._wire.get(number)
        if wire is None and number in self.dataset.permits:
            wire = self._wire[number] = permit_to_wire(self.dataset.permits[number])
        return wire

    def history(self, number: str) -> list[dict[str, Any]]:
        return [event_to_wire(e) for e in self.dataset.histories.get(number, ())]

    async def get_permit(self, request: Request) -> JSONBody:
        permit = self.permit(request.path_params["number"])
        return JSONBody(permit) if permit is not None else not_found()

    async def batch_permits(self, request: Request) -> JSONBody:
        numbers = await read_id_list(request, "numbers")
        return JSONBody({"permits": [self.permit(n) for n in numbers]})

    async def get_history(self, request: Request) -> JSONBody:
        number = request.path_params["number"]
        if number not in self.dataset.permits:
            return not_found()
        return JSONBody({"history": self.history(number)})

    async def batch_history(self, request: Request) -> JSONBody:
        numbers = await read_id_list(request, "numbers")
        return JSONBody({"history": {n: self.history(n) for n in numbers}})

    async def batch_holders(self, request: Request) -> JSONBody:
        ids = await read_id_list(request, "ids")
        by_holder = self.dataset.permits_by_holder
        return JSONBody({"permits": {i: list(by_holder.get(i, ())) for i in ids}})

    async def get_qr(self, request: Request) -> JSONBody:
        number = request.path_params["number"]
        if number not in self.dataset.permits:
            return not_found()
        ttl = _ttl(request.query_params.get("ttl"))
        return JSONBody({"payload": qr_payload(self.key, number, ttl)})

    async def get_jwks(self, request: Request) -> JSONBody:
        return JSONBody(wms_jwks(self.key))


def _ttl(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_QR_TTL
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_QR_TTL:
        raise BadRequest(f"ttl must be a whole number of seconds between 1 and {MAX_QR_TTL}")
    return int(raw)


def build_wms_app(dataset: Dataset, signing_key: jwk.ECKey | None = None) -> Starlette:
    """The Work Management System over `dataset`; `app.state.signing_key` signs its QR codes."""
    key = _key_of(signing_key or generate_signing_key())
    api = _Endpoints(dataset, key)
    routes = [
        Route("/permits:batch", api.batch_permits, methods=["POST"]),
        Route("/permits/history:batch", api.batch_history, methods=["POST"]),
        Route("/foreigners/permits:batch", api.batch_holders, methods=["POST"]),
        Route("/permits/{number}", api.get_permit, methods=["GET"]),
        Route("/permits/{number}/history", api.get_history, methods=["GET"]),
        Route("/permits/{number}/qr", api.get_qr, methods=["GET"]),
        Route("/.well-known/jwks.json", api.get_jwks, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
    ]
    app = simulator_app(routes)
    app.state.signing_key = key
    app.state.dataset = dataset
    return app
