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

An officer's side, for demos and tests (the real WMS has its own back office):

    POST   /admin/permits/{number}/changes  {"kind": RENEWED|ALTERED|CANCELLED|REVOKED|
                                             REISSUED_ELECTRONIC, "detail"?, "position"?}
                                            applies the change, then pushes it to every
                                            subscriber; answers {"event", "signed", "deliveries"}
    PUT    /admin/subscribers               [{"url", "tokenUrl", "clientId", "clientSecret"}]
    DELETE /admin/subscribers               forget them all

A pushed event is a compact JWS (ES256, `typ: permit-event+jwt`, the same key as the QR codes)
whose claims are {iss: "wms", jti, iat, sub: permit number, event: {...}}, POSTed as
`{"event": "<JWS>"}` to `<url>` with a client-credentials token from `<tokenUrl>`. A renewal or
alteration of a legacy physical-card permit moves it to the electronic permit ("no change, no
replacement": untouched permits keep their card).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import os
import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson
from joserfc import jwk, jwt
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route

from connectors.events import CHANGE_KINDS, EVENT_TYPE, PermitChange
from connectors.records import Permit, PermitEvent, PermitEventKind, PermitMedium, PermitStatus
from connectors.wire import event_to_wire, permit_to_wire
from simulators._http import (
    BadRequest,
    JSONBody,
    healthz,
    not_found,
    read_id_list,
    simulator_app,
)
from simulators.synthetic import Dataset

__all__ = [
    "EVENT_TYPE",
    "QR_ISSUER",
    "build_wms_app",
    "generate_signing_key",
    "load_or_create_signing_key",
    "publish_to_hub",
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
        self.publisher = _Publisher(key)
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

    # -- the officer's side --------------------------------------------------------------------

    async def put_subscribers(self, request: Request) -> JSONBody:
        body = _json(await request.body())
        keys = ("url", "tokenUrl", "clientId", "clientSecret")
        if not isinstance(body, list) or not all(
            isinstance(s, dict) and all(isinstance(s.get(k), str) for k in keys) for s in body
        ):
            raise BadRequest(f"expected a list of objects with {', '.join(keys)}")
        self.publisher.subscribers = [_Subscriber(*(s[k] for k in keys)) for s in body]
        return JSONBody({"subscribers": len(body)})

    async def delete_subscribers(self, request: Request) -> JSONBody:
        self.publisher.subscribers = []
        return JSONBody({"subscribers": 0})

    async def post_change(self, request: Request) -> JSONBody:
        number = request.path_params["number"]
        permit = self.dataset.permits.get(number)
        if permit is None:
            return not_found()
        body = _json(await request.body())
        if not isinstance(body, dict):
            raise BadRequest("expected a JSON object")
        try:
            kind = PermitEventKind(str(body.get("kind")))
        except ValueError:
            kind = PermitEventKind.ISSUED
        if kind not in CHANGE_KINDS:
            raise BadRequest(f"kind must be one of {sorted(k.value for k in CHANGE_KINDS)}")
        detail, position = body.get("detail"), body.get("position")
        if not isinstance(detail, str | None) or not isinstance(position, str | None):
            raise BadRequest("detail and position must be strings")
        changes = self.apply(permit, kind, detail, position)
        signed = [self.publisher.sign(change) for change in changes]
        deliveries = [await self.publisher.push(jws) for jws in signed]
        return JSONBody(
            {
                "event": changes[-1].to_wire(),
                "events": [c.to_wire() for c in changes],
                "signed": signed[-1],
                "deliveries": [d for batch in deliveries for d in batch],
            }
        )

    def apply(
        self, permit: Permit, kind: PermitEventKind, detail: str | None, position: str | None
    ) -> list[PermitChange]:
        """Change the permit as the WMS would, record its history; the changes to push."""
        now = dt.datetime.now(dt.UTC)
        updated = permit
        if kind in (PermitEventKind.CANCELLED, PermitEventKind.REVOKED):
            updated = dataclasses.replace(permit, status=PermitStatus(kind.value))
        elif kind is PermitEventKind.RENEWED:
            start = max(permit.valid_until, now.date())
            updated = dataclasses.replace(
                permit, status=PermitStatus.VALID, valid_until=start + dt.timedelta(days=365)
            )
        elif kind is PermitEventKind.ALTERED:
            updated = dataclasses.replace(permit, position=position or permit.position)
        kinds = [kind]
        if permit.medium is PermitMedium.PHYSICAL_CARD and kind in _MOVES_TO_ELECTRONIC:
            updated = dataclasses.replace(updated, medium=PermitMedium.ELECTRONIC)
            if kind is not PermitEventKind.REISSUED_ELECTRONIC:
                kinds.append(PermitEventKind.REISSUED_ELECTRONIC)
        self.dataset.permits[permit.number] = updated
        self._wire.pop(permit.number, None)
        changes = [
            PermitChange(
                event_id=str(uuid.uuid4()),
                permit_number=permit.number,
                kind=k,
                at=now,
                status=updated.status,
                medium=updated.medium,
                valid_until=updated.valid_until,
                detail=detail if k is kind else "electronic work permit issued",
            )
            for k in kinds
        ]
        history = self.dataset.histories.get(permit.number, ())
        self.dataset.histories[permit.number] = history + tuple(
            PermitEvent(c.permit_number, c.kind, c.at, c.status, c.detail) for c in changes
        )
        return changes


_MOVES_TO_ELECTRONIC = frozenset(
    {PermitEventKind.RENEWED, PermitEventKind.ALTERED, PermitEventKind.REISSUED_ELECTRONIC}
)
_PUSH_ATTEMPTS = 3


def _json(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadRequest("body is not JSON") from None


@dataclasses.dataclass(slots=True)
class _Subscriber:
    url: str
    token_url: str
    client_id: str
    client_secret: str
    token: str | None = None
    token_expires: float = 0.0


class _Publisher:
    """Signs changes with the WMS key and pushes them to the hubs that subscribed."""

    def __init__(self, key: jwk.ECKey) -> None:
        self.key = key
        self.subscribers: list[_Subscriber] = []

    def sign(self, change: PermitChange) -> str:
        claims = {
            "iss": QR_ISSUER,
            "jti": change.event_id,
            "iat": int(dt.datetime.now(dt.UTC).timestamp()),
            "sub": change.permit_number,
            "event": change.to_wire(),
        }
        header = {"alg": QR_ALGORITHM, "typ": EVENT_TYPE, "kid": self.key.kid}
        return jwt.encode(header, claims, self.key, algorithms=[QR_ALGORITHM])

    async def push(self, signed: str) -> list[dict[str, Any]]:
        async with httpx.AsyncClient(timeout=10.0) as client:
            return [await self._push_one(client, s, signed) for s in list(self.subscribers)]

    async def _push_one(
        self, client: httpx.AsyncClient, subscriber: _Subscriber, signed: str
    ) -> dict[str, Any]:
        """At most `_PUSH_ATTEMPTS` tries; a 4xx other than 401 is final (the hub refused)."""
        status: int | str = "unsent"
        for attempt in range(_PUSH_ATTEMPTS):
            try:
                token = await self._token(client, subscriber)
                response = await client.post(
                    subscriber.url,
                    json={"event": signed},
                    headers={"authorization": f"Bearer {token}"},
                )
                status = response.status_code
                if status == 401:
                    subscriber.token = None
                elif status < 500:
                    break
            except httpx.HTTPError as exc:
                status = type(exc).__name__
            await asyncio.sleep(0.05 * 2**attempt)
        return {"url": subscriber.url, "status": status}

    async def _token(self, client: httpx.AsyncClient, subscriber: _Subscriber) -> str:
        now = asyncio.get_running_loop().time()
        if subscriber.token is None or subscriber.token_expires <= now:
            response = await client.post(
                subscriber.token_url,
                data={"grant_type": "client_credentials", "scope": "events:publish"},
                auth=(subscriber.client_id, subscriber.client_secret),
            )
            response.raise_for_status()
            body = response.json()
            subscriber.token = str(body["access_token"])
            subscriber.token_expires = now + float(body.get("expires_in", 60)) - 30
        return subscriber.token


def publish_to_hub(app: Starlette, hub_url: str, client_id: str, client_secret: str) -> None:
    """Make the simulator push its permit changes to the hub at `hub_url` (the demo wires this)."""
    base = hub_url.rstrip("/")
    publisher: _Publisher = app.state.publisher
    publisher.subscribers = [
        _Subscriber(base + "/events/permits", base + "/oauth/token", client_id, client_secret)
    ]


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
        Route("/admin/permits/{number}/changes", api.post_change, methods=["POST"]),
        Route("/admin/subscribers", api.put_subscribers, methods=["PUT"]),
        Route("/admin/subscribers", api.delete_subscribers, methods=["DELETE"]),
    ]
    app = simulator_app(routes)
    app.state.signing_key = key
    app.state.publisher = api.publisher
    app.state.dataset = dataset
    return app
