"""Tokens from a trusted agency identity provider, whose JWKS is served over real HTTP."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import uvicorn
from joserfc import jwt
from joserfc.jwk import RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from auth import RegistryError, TrustedIssuer
from tests.auth.conftest import AUDIENCE, Hub, HubFactory, config

IDP = "https://idp.public-security.test"


class IdentityProvider:
    def __init__(self) -> None:
        self.key = RSAKey.generate_key(2048, {"kid": "idp-1", "alg": "RS256"}, private=True)
        self.url = ""

    def jwks(self, request: Request) -> JSONResponse:
        return JSONResponse({"keys": [self.key.as_dict(private=False)]})

    def token(self, **overrides: Any) -> str:
        now = int(time.time())
        claims = {"iss": IDP, "aud": AUDIENCE, "sub": "user-42", "azp": "exit-entry-wuhan",
                  "exp": now + 300, "iat": now, "jti": uuid.uuid4().hex,
                  "scp": ["residence.check", "unrelated"], "agency": "Wuhan Exit-Entry"}
        claims.update(overrides)
        return jwt.encode({"alg": "RS256", "kid": self.key.kid}, claims, self.key)


@pytest.fixture
async def idp() -> AsyncIterator[IdentityProvider]:
    provider = IdentityProvider()
    app = Starlette(routes=[Route("/jwks", provider.jwks)])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                                           lifespan="off", ws="none"))
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn offers a flag, not an event
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    provider.url = f"http://127.0.0.1:{port}/jwks"
    yield provider
    server.should_exit = True
    await task


@pytest.fixture
async def hub_trusting(make_hub: HubFactory, idp: IdentityProvider) -> Hub:
    trusted = TrustedIssuer(
        issuer=IDP, jwks_url=idp.url, audience=AUDIENCE,
        scope_mapping={"residence.check": frozenset({"permit:validity", "permit:holder"})},
        accept_scp_claim=True, accept_scope_array=True, agency_claim="agency",
    )
    hub = await make_hub(config(trusted_issuers=(trusted,)))
    await hub.service.add_client(
        "exit-entry-wuhan", "Wuhan Exit-Entry", ["permit:validity", "card:status"],
        ["residence-permit"], external_issuer=IDP,
    )
    return hub


async def test_a_trusted_idp_token_maps_its_scopes(
    hub_trusting: Hub, idp: IdentityProvider
) -> None:
    response = await hub_trusting.call(idp.token())

    assert response.status_code == 200, response.text
    assert response.json()["issuer"] == IDP
    assert response.json()["client_id"] == "exit-entry-wuhan"
    # mapped {validity, holder}, capped by the registration {validity, card:status}
    assert response.json()["scopes"] == ["permit:validity"]


async def test_idp_tokens_get_the_same_checks(hub_trusting: Hub, idp: IdentityProvider) -> None:
    now = int(time.time())
    other_key = RSAKey.generate_key(2048, {"kid": "idp-1", "alg": "RS256"}, private=True)
    forged = jwt.encode({"alg": "RS256", "kid": "idp-1"},
                        jwt.decode(idp.token(), idp.key).claims, other_key)
    cases = {
        "invalid token signature": forged,
        "invalid aud claim": idp.token(aud="https://elsewhere.test"),
        "token expired": idp.token(exp=now - 100),
        "token not yet valid": idp.token(nbf=now + 300),
        "unknown signing key": jwt.encode({"alg": "RS256", "kid": "idp-9"}, {"iss": IDP},
                                          idp.key),
        "unknown client": idp.token(azp="si-agency-wuhan"),
        "agency does not match the registered client": idp.token(agency="Someone Else"),
        "token lacks a required claim": idp.token(jti=None),
    }
    for description, token in cases.items():
        response = await hub_trusting.call(token)
        assert response.status_code == 401, description
        assert response.json()["description"] == description


async def test_a_hub_client_cannot_be_claimed_by_an_idp_token(
    hub_trusting: Hub, idp: IdentityProvider
) -> None:
    _, secret = await hub_trusting.service.add_client(
        "auditor-hubei", "Hubei Audit", ["audit:read"], ["audit"])
    assert secret is not None
    response = await hub_trusting.call(idp.token(azp="auditor-hubei", agency="Hubei Audit"))
    assert response.status_code == 401
    assert response.json()["description"] == "unknown client"
    # and the IdP-bound client cannot get hub tokens with a secret it does not have
    assert (await hub_trusting.token("exit-entry-wuhan", "x")).status_code == 401


async def test_an_unreachable_idp_is_refused_not_crashed(make_hub: HubFactory) -> None:
    trusted = TrustedIssuer(issuer=IDP, jwks_url="http://127.0.0.1:9/jwks", audience=AUDIENCE)
    hub = await make_hub(config(trusted_issuers=(trusted,)))
    response = await hub.call(IdentityProvider().token())
    assert response.status_code == 401
    assert response.json()["description"] == "issuer keys unavailable"


def test_hmac_or_none_can_never_be_configured() -> None:
    for algorithms in (("HS256",), ("none",), ()):
        with pytest.raises(ValueError):
            TrustedIssuer(issuer=IDP, jwks_url="http://x", audience=AUDIENCE,
                          algorithms=algorithms)
    with pytest.raises(ValueError):
        config(signing_algorithm="HS256")


async def test_a_trusted_issuer_cannot_also_be_an_exchange_identity_provider(
    hub_trusting: Hub, idp: IdentityProvider
) -> None:
    await hub_trusting.service.add_client(
        "si-agency-wuhan", "Wuhan SI", ["enrollment:read"], ["benefits"])
    with pytest.raises(RegistryError, match="trusted issuer of access tokens"):
        await hub_trusting.service.add_identity_provider(
            "si-agency-wuhan", IDP, "officer", {"clerk": ["enrollment:read"]}, jwks_url=idp.url)
    assert await hub_trusting.service.list_identity_providers() == []
