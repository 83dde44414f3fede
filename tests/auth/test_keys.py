"""Signing keys: JWKS and metadata shape, rotation with publication ahead and a grace period."""

from __future__ import annotations

import json
from typing import cast

from authlib.oauth2.rfc8414 import AuthorizationServerMetadata
from joserfc import jws
from joserfc.jwk import KeySet, KeySetSerialization

from tests.auth.conftest import ISSUER, Agency, Clock, Hub, HubFactory

LEAD, TTL, LEEWAY, GRACE = 120, 600, 30, 60


def kid_of(token: str) -> str:
    return str(jws.extract_compact(token.encode()).headers()["kid"])


async def published(hub: Hub) -> list[str]:
    response = await hub.http.get("/.well-known/jwks.json")
    assert response.status_code == 200
    return [key["kid"] for key in response.json()["keys"]]


async def test_jwks_publishes_public_keys_only(hub: Hub) -> None:
    response = await hub.http.get("/.well-known/jwks.json")

    keys = response.json()["keys"]
    assert len(keys) == 1
    assert keys[0]["kty"] == "EC" and keys[0]["crv"] == "P-256" and keys[0]["alg"] == "ES256"
    assert keys[0]["use"] == "sig" and keys[0]["kid"]
    assert "d" not in keys[0]
    assert KeySet.import_key_set(response.json()).keys[0].is_private is False


async def test_metadata_is_valid_rfc8414(hub: Hub) -> None:
    response = await hub.http.get("/.well-known/oauth-authorization-server")

    metadata = AuthorizationServerMetadata(response.json())
    metadata.validate()
    assert metadata["issuer"] == ISSUER
    assert metadata["token_endpoint"] == ISSUER + "/oauth/token"
    assert metadata["jwks_uri"] == ISSUER + "/.well-known/jwks.json"
    assert metadata["revocation_endpoint"] == ISSUER + "/oauth/revoke"
    assert metadata["grant_types_supported"] == [
        "client_credentials", "urn:ietf:params:oauth:grant-type:token-exchange"]
    assert set(metadata["token_endpoint_auth_methods_supported"]) == {
        "client_secret_basic", "client_secret_post", "private_key_jwt"}
    assert "permit:validity" in metadata["scopes_supported"]


async def test_rotation_publishes_first_signs_later_and_keeps_the_old_key(
    hub: Hub, exit_entry: Agency, clock: Clock, make_hub: HubFactory
) -> None:
    old_token = await hub.access_token(exit_entry.client_id, exit_entry.secret)
    old_kid = kid_of(old_token)

    new_kid = await hub.service.rotate_keys()

    assert await published(hub) == [old_kid, new_kid]  # published before it signs
    assert kid_of(await hub.access_token(exit_entry.client_id, exit_entry.secret)) == old_kid
    assert hub.events[-2].kind == "key_rotated"

    clock.advance(LEAD)
    new_token = await hub.access_token(exit_entry.client_id, exit_entry.secret)
    assert kid_of(new_token) == new_kid
    last_old_token = old_token
    assert await published(hub) == [old_kid, new_kid]  # old key kept while its tokens live
    assert (await hub.call(last_old_token)).status_code == 200
    other = await make_hub()  # a fresh instance knows both keys from the database
    assert (await other.call(new_token)).status_code == 200
    assert (await other.call(last_old_token)).status_code == 200


async def test_a_token_signed_by_a_rotated_out_key_is_refused_after_the_grace(
    hub: Hub, exit_entry: Agency, clock: Clock
) -> None:
    old_kid = hub.service._ring.signing_key().kid
    await hub.service.rotate_keys()
    clock.advance(LEAD - 1)
    last = int(clock())
    forged_late = hub.mint(hub.valid_claims(exit_entry.client_id, iat=last, exp=last + 10**6))
    assert kid_of(forged_late) == old_kid  # the old key's last moments of signing
    before = await hub.snapshot()

    clock.advance(1 + TTL + LEEWAY + GRACE)
    hub.service._ring._loaded_at = float("-inf")  # as after the periodic refresh

    assert old_kid not in await published(hub)
    response = await hub.call(forged_late)
    assert response.status_code == 401
    assert response.json()["code"] == "UNAUTHENTICATED"
    assert response.json()["description"] == "unknown signing key"
    assert (await hub.snapshot())[0] == before[0]


async def test_sign_jws_uses_the_current_key_verifiable_from_the_jwks(hub: Hub) -> None:
    evidence = await hub.service.sign_jws(json.dumps({"chain": "abc"}).encode())

    jwks = KeySet.import_key_set(cast(KeySetSerialization, hub.service.jwks()))
    verified = jws.deserialize_compact(evidence, jwks)

    assert json.loads(verified.payload) == {"chain": "abc"}
    assert verified.headers()["kid"] == hub.service._ring.signing_key().kid
