"""Simulated identity providers: the agencies' officer sign-on and the e-SSC app's real-name check.

Each signs short-lived ES256 assertions for the hub's token exchange with its own key, published
as a JWK set the hub fetches. One agency IdP per agency client (issuer `<base>/agencies/<client>`)
asserts that agency's officers; the e-SSC identity-verification service (issuer `<base>/essc`)
asserts a foreigner (`sub` = the foreigner's id) once the name given matches the permit
holder's. Keys are made at start-up: a restarted simulator publishes new ones, and the hub
fetches them again for the unknown kid.

    GET  /agencies/{client_id}/jwks.json   an agency IdP's public keys
    POST /officers/assertion               {"client_id", "officer"} → {"assertion"}
                                           (404 for an officer the agency does not have)
    GET  /essc/jwks.json                   the verification service's public keys
    POST /essc/assertion                   {"permitNumber", "name"} → {"assertion"}
                                           (403 {"error": "identity_not_verified"} when the
                                           permit is unknown or the name is not its holder's)

    GET  /healthz                          {"status": "ok"}

`IdentityProviders.sign` lets tests sign any claims with a provider's real key (the attacks of
the token-exchange suite). Demo and tests only, like every simulator.
"""

from __future__ import annotations

import time
import unicodedata
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route

from simulators._http import BadRequest, JSONBody, healthz, read_object, simulator_app
from simulators.synthetic import Dataset

__all__ = [
    "ESSC",
    "OFFICERS",
    "IdentityProviders",
    "Officer",
    "build_identity_app",
]

ESSC = "essc"  # the verification service's name among the providers
_ASSERTION_SECONDS = 120


@dataclass(frozen=True)
class Officer:
    client_id: str
    roles: tuple[str, ...]


# The demo's officers, by id: one per agency that signs its officers on.
OFFICERS: Mapping[str, Officer] = {
    "PS-0001": Officer("exit-entry-wuhan", ("border-officer",)),
    "SI-0001": Officer("si-agency-wuhan", ("enrollment-officer",)),
}


def _name(text: str) -> str:
    """A name as the real-name check compares it: NFKC, case and spacing ignored."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


class IdentityProviders:
    """The providers' keys and what they assert; `hub_token_endpoint` is every assertion's aud."""

    def __init__(self, dataset: Dataset, hub_token_endpoint: str) -> None:
        self.dataset = dataset
        self.audience = hub_token_endpoint
        names = {officer.client_id for officer in OFFICERS.values()} | {ESSC}
        self._keys = {
            name: ECKey.generate_key(
                "P-256", {"kid": f"{name}-{uuid.uuid4().hex[:8]}", "alg": "ES256", "use": "sig"},
                private=True,
            )
            for name in sorted(names)
        }

    @staticmethod
    def issuer(base_url: str, name: str) -> str:
        base = base_url.rstrip("/")
        return f"{base}/essc" if name == ESSC else f"{base}/agencies/{name}"

    @staticmethod
    def jwks_url(base_url: str, name: str) -> str:
        return IdentityProviders.issuer(base_url, name) + "/jwks.json"

    def jwks(self, name: str) -> dict[str, Any]:
        return {"keys": [self._keys[name].as_dict(private=False)]}

    def sign(self, name: str, claims: Mapping[str, Any], **header: Any) -> str:
        """Any claims, signed with provider `name`'s real key (tests forge with this)."""
        key = self._keys[name]
        return jwt.encode({"alg": "ES256", "kid": key.kid, "typ": "JWT", **header}, dict(claims),
                          key)

    def claims(self, base_url: str, name: str, subject: str, roles: list[str]) -> dict[str, Any]:
        now = int(time.time())
        return {
            "iss": self.issuer(base_url, name), "aud": self.audience, "sub": subject,
            "roles": roles, "iat": now, "exp": now + _ASSERTION_SECONDS,
            "jti": uuid.uuid4().hex,
        }

    def officer_assertion(self, base_url: str, client_id: str, officer_id: str) -> str | None:
        officer = OFFICERS.get(officer_id)
        if officer is None or officer.client_id != client_id:
            return None
        return self.sign(client_id, self.claims(base_url, client_id, officer_id,
                                                list(officer.roles)))

    def foreigner_assertion(self, base_url: str, permit_number: str, name: str) -> str | None:
        """The e-SSC check: the permit's holder, if `name` is that holder's name."""
        permit = self.dataset.permits.get(permit_number)
        if permit is None or _name(permit.holder.name) != _name(name):
            return None
        return self.sign(ESSC, self.claims(base_url, ESSC, permit.holder.id, ["foreigner"]))


def _strings(body: dict[str, Any], *names: str) -> list[str]:
    values = [body.get(name) for name in names]
    if not all(isinstance(v, str) and 0 < len(v) <= 256 for v in values):
        raise BadRequest("expected {" + ", ".join(f'"{n}": string' for n in names) + "}")
    return [str(v) for v in values]


def build_identity_app(providers: IdentityProviders) -> Starlette:
    """The providers as one HTTP app; `app.state.identity` is `providers`."""

    def base(request: Request) -> str:
        return str(request.base_url).rstrip("/")

    async def agency_jwks(request: Request) -> JSONBody:
        client_id = request.path_params["client_id"]
        if client_id == ESSC or client_id not in {o.client_id for o in OFFICERS.values()}:
            return JSONBody({"error": "not_found"}, status_code=404)
        return JSONBody(providers.jwks(client_id))

    async def officer(request: Request) -> JSONBody:
        client_id, officer_id = _strings(await read_object(request), "client_id", "officer")
        assertion = providers.officer_assertion(base(request), client_id, officer_id)
        if assertion is None:
            return JSONBody({"error": "unknown_officer"}, status_code=404)
        return JSONBody({"assertion": assertion})

    async def essc_jwks(request: Request) -> JSONBody:
        return JSONBody(providers.jwks(ESSC))

    async def essc(request: Request) -> JSONBody:
        number, name = _strings(await read_object(request), "permitNumber", "name")
        assertion = providers.foreigner_assertion(base(request), number, name)
        if assertion is None:
            # One answer for an unknown permit and a wrong name: no probing whose permit it is.
            return JSONBody({"error": "identity_not_verified"}, status_code=403)
        return JSONBody({"assertion": assertion})

    app = simulator_app([
        Route("/healthz", healthz, methods=["GET"]),
        Route("/agencies/{client_id}/jwks.json", agency_jwks, methods=["GET"]),
        Route("/officers/assertion", officer, methods=["POST"]),
        Route("/essc/jwks.json", essc_jwks, methods=["GET"]),
        Route("/essc/assertion", essc, methods=["POST"]),
    ])
    app.state.identity = providers
    return app
