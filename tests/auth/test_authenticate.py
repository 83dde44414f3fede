"""The resource-server check: every bad bearer token is a 401 UNAUTHENTICATED, changes nothing
and never crashes; a good one gives the Principal."""

from __future__ import annotations

import hashlib
import hmac
import json

import httpx
import pytest
import redis.asyncio as redis_async
from joserfc import jwt
from joserfc.jwk import ECKey
from sqlalchemy.ext.asyncio import AsyncEngine

from auth import AuthService, Unauthenticated
from infra.kv import RedisKeyValue
from tests.auth.conftest import (
    AUDIENCE,
    ISSUER,
    Agency,
    Clock,
    Hub,
    b64,
    config,
    protected_app,
    refused_within_a_second,
)


async def assert_refused(hub: Hub, response: httpx.Response, description: str) -> None:
    assert response.status_code == 401
    body = response.json()
    assert body["code"] == "UNAUTHENTICATED"
    assert body["error"] == "invalid_token"
    assert body["description"] == description
    assert response.headers["www-authenticate"].startswith('Bearer error="invalid_token"')


async def test_a_valid_token_gives_the_principal(hub: Hub, exit_entry: Agency) -> None:
    token = await hub.access_token(exit_entry.client_id, exit_entry.secret)

    principal = await hub.service.authenticate(f"Bearer {token}")

    assert principal.client_id == "exit-entry-wuhan"
    assert principal.agency == "Wuhan Exit-Entry Administration"
    assert principal.scopes == {"permit:validity", "permit:holder", "card:status",
                                "events:subscribe"}
    assert principal.purposes == {"residence-permit", "investigation"}
    assert principal.issuer == ISSUER
    assert principal.embargoed_until is None
    assert await hub.service.authenticate(f"bearer {token}") == principal  # cached path


async def test_missing_authorization_is_refused(hub: Hub, exit_entry: Agency) -> None:
    before = await hub.snapshot()
    await assert_refused(hub, await hub.call(None), "missing Authorization header")
    assert await hub.snapshot() == before


async def test_malformed_authorization_is_refused(hub: Hub, exit_entry: Agency) -> None:
    token = await hub.access_token(exit_entry.client_id, exit_entry.secret)
    before = await hub.snapshot()
    for header in (f"Basic {token}", "Bearer", "Bearer ", f"Bearer {token} extra", token):
        response = await hub.call(Authorization=header)
        await assert_refused(hub, response, "malformed Authorization header")
    for garbage in ("a.b.c", "not-a-jwt", "....", "e30.e30.", "[].[].x", "W10.W10.", "\x00"):
        await assert_refused(hub, await hub.call(garbage), "malformed token")
    with pytest.raises(Unauthenticated, match="malformed token"):
        await hub.service.authenticate("Bearer \u00e9.\u00e9.\u00e9")
    assert await hub.snapshot() == before


async def test_alg_none_is_refused(hub: Hub, exit_entry: Agency) -> None:
    claims = hub.valid_claims(exit_entry.client_id)
    kid = hub.service._ring.signing_key().kid
    before = await hub.snapshot()
    for alg in ("none", "None", "NONE"):
        unsigned = f"{b64({'alg': alg, 'kid': kid, 'typ': 'at+jwt'})}.{b64(claims)}."
        await assert_refused(hub, await hub.call(unsigned), "invalid token signature")
    assert await hub.snapshot() == before


async def test_hs256_signed_with_the_public_key_is_refused(hub: Hub, exit_entry: Agency) -> None:
    claims = hub.valid_claims(exit_entry.client_id)
    public = hub.service.jwks()["keys"][0]
    kid = public["kid"]
    before = await hub.snapshot()
    secrets = [json.dumps(public).encode(),
               ECKey.import_key(public).as_pem(private=False)]
    for secret in secrets:
        signing_input = f"{b64({'alg': 'HS256', 'kid': kid, 'typ': 'at+jwt'})}.{b64(claims)}"
        mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        forged = f"{signing_input}.{b64(mac)}"
        await assert_refused(hub, await hub.call(forged), "invalid token signature")
    assert await hub.snapshot() == before


async def test_tampered_payload_is_refused(hub: Hub, exit_entry: Agency) -> None:
    token = await hub.access_token(exit_entry.client_id, exit_entry.secret, scope="permit:validity")
    header, _, signature = token.split(".")
    claims = jwt.decode(token, hub.service._ring.signing_key().private).claims
    claims["scope"] = "permit:validity permit:detail person:identity"
    before = await hub.snapshot()

    tampered = f"{header}.{b64(claims)}.{signature}"

    await assert_refused(hub, await hub.call(tampered), "invalid token signature")
    assert await hub.snapshot() == before


async def test_unknown_kid_is_refused(hub: Hub, exit_entry: Agency) -> None:
    stranger = ECKey.generate_key("P-256", {"kid": "not-ours", "alg": "ES256"}, private=True)
    claims = hub.valid_claims(exit_entry.client_id)
    forged = jwt.encode({"alg": "ES256", "kid": "not-ours", "typ": "at+jwt"}, claims, stranger)
    no_kid = jwt.encode({"alg": "ES256", "typ": "at+jwt"}, claims, stranger)
    before = await hub.snapshot()

    await assert_refused(hub, await hub.call(forged), "unknown signing key")
    await assert_refused(hub, await hub.call(no_kid), "unknown signing key")
    assert await hub.snapshot() == before


async def test_expired_token_is_refused(hub: Hub, exit_entry: Agency, clock: Clock) -> None:
    token = await hub.access_token(exit_entry.client_id, exit_entry.secret)
    assert (await hub.call(token)).status_code == 200  # now in the verified-token cache
    before = await hub.snapshot()

    clock.advance(600 + 30 + 1)

    await assert_refused(hub, await hub.call(token), "token expired")
    assert await hub.snapshot() == before


async def test_expiry_within_the_leeway_is_tolerated(hub: Hub, exit_entry: Agency) -> None:
    now = int(hub.service._clock())
    token = hub.mint(hub.valid_claims(exit_entry.client_id, exp=now - 10))
    assert (await hub.call(token)).status_code == 200


async def test_nbf_in_the_future_is_refused(hub: Hub, exit_entry: Agency) -> None:
    now = int(hub.service._clock())
    token = hub.mint(hub.valid_claims(exit_entry.client_id, nbf=now + 120))
    before = await hub.snapshot()
    await assert_refused(hub, await hub.call(token), "token not yet valid")
    assert await hub.snapshot() == before


async def test_wrong_audience_is_refused(hub: Hub, exit_entry: Agency) -> None:
    before = await hub.snapshot()
    for aud in ("https://other.test/graphql", ["https://a.test", "https://b.test"], 7):
        token = hub.mint(hub.valid_claims(exit_entry.client_id, aud=aud))
        await assert_refused(hub, await hub.call(token), "invalid aud claim")
    assert (await hub.call(hub.mint(hub.valid_claims(
        exit_entry.client_id, aud=["https://a.test", AUDIENCE])))).status_code == 200
    assert await hub.snapshot() == before


async def test_wrong_issuer_is_refused(hub: Hub, exit_entry: Agency) -> None:
    before = await hub.snapshot()
    for iss in ("https://evil.test", ISSUER + "/", None, 42):
        token = hub.mint(hub.valid_claims(exit_entry.client_id, iss=iss))
        await assert_refused(hub, await hub.call(token), "untrusted issuer")
    assert await hub.snapshot() == before


async def test_missing_claims_are_refused(hub: Hub, exit_entry: Agency) -> None:
    for claim in ("exp", "jti", "client_id", "sub", "iat", "aud"):
        claims = hub.valid_claims(exit_entry.client_id)
        del claims[claim]
        response = await hub.call(hub.mint(claims))
        assert response.status_code == 401
        assert response.json()["code"] == "UNAUTHENTICATED"


async def test_a_jws_that_is_not_an_access_token_is_refused(hub: Hub, exit_entry: Agency) -> None:
    claims = json.dumps(hub.valid_claims(exit_entry.client_id)).encode()
    evidence = await hub.service.sign_jws(claims)
    await assert_refused(hub, await hub.call(evidence), "not an access token")


async def test_oversized_token_is_refused(hub: Hub, exit_entry: Agency) -> None:
    token = await hub.access_token(exit_entry.client_id, exit_entry.secret)
    before = await hub.snapshot()
    padded = hub.mint(hub.valid_claims(exit_entry.client_id, pad="x" * 9000))

    await assert_refused(hub, await hub.call(padded), "token too large")
    await assert_refused(hub, await hub.call(token + "A" * 9000), "token too large")
    assert await hub.snapshot() == before


async def test_disabled_client_is_refused_on_every_instance(
    hub: Hub, exit_entry: Agency, make_hub: object
) -> None:
    other = await make_hub()  # type: ignore[operator]
    token = await hub.access_token(exit_entry.client_id, exit_entry.secret)
    assert (await other.call(token)).status_code == 200  # cached on the other instance

    await hub.service.disable_client(exit_entry.client_id)

    await assert_refused(hub, await hub.call(token), "client disabled")  # at once, here
    await assert_refused(other, await refused_within_a_second(other, token), "client disabled")


async def test_narrowed_scopes_apply_to_live_tokens(hub: Hub, exit_entry: Agency) -> None:
    token = await hub.access_token(exit_entry.client_id, exit_entry.secret)
    await hub.service.set_scopes(exit_entry.client_id, ["permit:validity"])
    assert (await hub.call(token)).json()["scopes"] == ["permit:validity"]


async def test_a_replica_that_cannot_hear_the_stream_fails_closed(
    hub: Hub, exit_entry: Agency, engine: AsyncEngine, clock: Clock
) -> None:
    """An instance whose Redis never answered has a denylist it cannot vouch for."""
    token = await hub.access_token(exit_entry.client_id, exit_entry.secret)
    dead = RedisKeyValue(redis_async.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2))
    cut_off = AuthService(engine, dead, config(), clock=clock)
    await cut_off.start()
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=protected_app(cut_off)), base_url=ISSUER
        ) as http:
            headers = {"Authorization": f"Bearer {token}", "X-Purpose-Of-Use": "residence-permit"}
            response = await http.get("/protected", headers=headers)
    finally:
        await cut_off.close()
        await dead.close()
    # Refused, but as "retry" (503), not as a bad token (401) that sends the client for another.
    assert response.status_code == 503
    assert response.json() == {"code": "UPSTREAM_UNAVAILABLE", "error": "temporarily_unavailable",
                               "description": "revocation status unavailable"}
    assert "www-authenticate" not in response.headers
