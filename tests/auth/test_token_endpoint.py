"""POST /oauth/token: client credentials with basic, post and private_key_jwt authentication."""

from __future__ import annotations

import time
import uuid

from authlib.oauth2.rfc7523 import private_key_jwt_sign
from joserfc import jwt

from auth import InvalidClient
from tests.auth.conftest import AUDIENCE, ISSUER, TOKEN_URL, Agency, Hub, agency_key

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


async def test_client_secret_basic_gives_an_rfc9068_token(hub: Hub, exit_entry: Agency) -> None:
    response = await hub.token(exit_entry.client_id, exit_entry.secret)

    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 600
    token = jwt.decode(body["access_token"], hub.service._ring.signing_key().private)
    assert token.header["typ"] == "at+jwt"
    assert token.header["alg"] == "ES256"
    claims = token.claims
    assert claims["iss"] == ISSUER
    assert claims["aud"] == AUDIENCE
    assert claims["sub"] == claims["client_id"] == "exit-entry-wuhan"
    assert claims["scope"] == "card:status events:subscribe permit:holder permit:validity"
    assert claims["exp"] - claims["iat"] == 600
    assert {"jti", "iat", "exp"} <= claims.keys()
    assert hub.events[-1].kind == "token_issued"
    assert exit_entry.secret not in repr(hub.events)


async def test_client_secret_post_with_a_narrower_scope(hub: Hub, exit_entry: Agency) -> None:
    form = {"grant_type": "client_credentials", "client_id": exit_entry.client_id,
            "client_secret": exit_entry.secret, "scope": "permit:validity"}
    response = await hub.http.post("/oauth/token", data=form)

    assert response.status_code == 200
    assert response.json()["scope"] == "permit:validity"
    answer = await hub.call(response.json()["access_token"])
    assert answer.json()["scopes"] == ["permit:validity"]


async def test_a_scope_beyond_the_clients_is_invalid_scope(hub: Hub, exit_entry: Agency) -> None:
    for scope in ("permit:validity enrollment:write", "no-such-scope"):
        response = await hub.token(exit_entry.client_id, exit_entry.secret, scope=scope)
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_scope"


async def test_invalid_scope_names_the_scope_and_what_the_client_may_ask_for(
    hub: Hub, exit_entry: Agency
) -> None:
    granted = "card:status events:subscribe permit:holder permit:validity"
    beyond = await hub.token(exit_entry.client_id, exit_entry.secret,
                             scope="permit:validity enrollment:read")
    unknown = await hub.token(exit_entry.client_id, exit_entry.secret, scope="permit:everything")
    assert beyond.json()["error_description"] == (
        f"scope not granted to this client: enrollment:read (it may ask for: {granted})"
    )
    assert unknown.json()["error_description"] == (
        f"unknown scope: permit:everything (it may ask for: {granted})"
    )


async def test_a_wrong_secret_says_what_to_check_without_saying_which_part_was_wrong(
    hub: Hub, exit_entry: Agency
) -> None:
    wrong = await hub.token(exit_entry.client_id, "not-the-secret")
    unknown = await hub.token("no-such-agency", "whatever")
    for response in (wrong, unknown):
        assert response.status_code == 401
        assert response.json() == {
            "error": "invalid_client",
            "error_description": "client authentication failed: unknown client id, wrong "
                                 "secret or key, or a disabled client",
        }


async def test_private_key_jwt_authenticates_with_the_registered_key(hub: Hub) -> None:
    key = agency_key()
    _, secret = await hub.service.add_client(
        "si-agency-wuhan", "Wuhan Social Security", ["permit:validity"], ["enrollment"],
        public_key=key.as_dict(private=False),
    )
    assert secret is None
    assertion = private_key_jwt_sign(key, "si-agency-wuhan", TOKEN_URL, alg="ES256")
    form = {"grant_type": "client_credentials", "client_id": "si-agency-wuhan",
            "client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion}

    response = await hub.http.post("/oauth/token", data=form)
    replay = await hub.http.post("/oauth/token", data=form)

    assert response.status_code == 200, response.text
    assert hub.events[-2].detail.startswith("method=private_key_jwt")
    assert replay.status_code == 401
    assert replay.json()["error"] == "invalid_client"


async def test_private_key_jwt_signed_by_another_key_is_refused(hub: Hub) -> None:
    await hub.service.add_client(
        "si-agency-wuhan", "Wuhan Social Security", ["permit:validity"], ["enrollment"],
        public_key=agency_key().as_dict(private=False),
    )
    now = int(time.time())
    claims = {"iss": "si-agency-wuhan", "sub": "si-agency-wuhan", "aud": TOKEN_URL,
              "iat": now, "exp": now + 60, "jti": uuid.uuid4().hex}
    forged = jwt.encode({"alg": "ES256"}, claims, agency_key())
    form = {"grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": forged}

    response = await hub.http.post("/oauth/token", data=form)

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


async def test_wrong_client_secret_is_invalid_client(hub: Hub, exit_entry: Agency) -> None:
    before = await hub.snapshot()

    response = await hub.token(exit_entry.client_id, exit_entry.secret + "x")

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert response.headers["www-authenticate"].startswith("Basic ")
    assert "access_token" not in response.json()
    assert await hub.snapshot() == before
    assert hub.events[-1].kind == "token_refused"
    assert hub.events[-1].client_id == exit_entry.client_id
    assert exit_entry.secret not in repr(hub.events)


async def test_unknown_client_is_invalid_client(hub: Hub, exit_entry: Agency) -> None:
    before = await hub.snapshot()

    basic = await hub.token("no-such-agency", exit_entry.secret)
    post = await hub.http.post("/oauth/token", data={
        "grant_type": "client_credentials", "client_id": "no-such-agency",
        "client_secret": "whatever"})

    for response in (basic, post):
        assert response.status_code == 401
        assert response.json()["error"] == "invalid_client"
    assert await hub.snapshot() == before


async def test_disabled_client_gets_no_token(hub: Hub, exit_entry: Agency) -> None:
    await hub.service.disable_client(exit_entry.client_id)
    before = await hub.snapshot()

    response = await hub.token(exit_entry.client_id, exit_entry.secret)

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert await hub.snapshot() == before


async def test_other_grant_types_are_unsupported(hub: Hub, exit_entry: Agency) -> None:
    before = await hub.snapshot()
    for grant in ("password", "authorization_code", "refresh_token", "", 'x"\\'):
        response = await hub.token(exit_entry.client_id, exit_entry.secret, grant_type=grant)
        assert response.status_code == 400
        assert response.json()["error"] == "unsupported_grant_type"
    assert await hub.snapshot() == before


async def test_malformed_token_requests_are_invalid_request(hub: Hub, exit_entry: Agency) -> None:
    auth = (exit_entry.client_id, exit_entry.secret)
    cases = [
        await hub.http.post("/oauth/token", json={"grant_type": "client_credentials"}, auth=auth),
        await hub.http.post("/oauth/token", content=b"grant_type=client_credentials"
                            b"&grant_type=password", auth=auth,
                            headers={"content-type": "application/x-www-form-urlencoded"}),
        await hub.http.post("/oauth/token", content=b"\xff\xfe=1", auth=auth,
                            headers={"content-type": "application/x-www-form-urlencoded"}),
        await hub.http.post("/oauth/token", content=b"a=" + b"x" * 70_000, auth=auth,
                            headers={"content-type": "application/x-www-form-urlencoded"}),
    ]
    for response in cases:
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_request"


async def test_garbage_basic_credentials_never_crash(hub: Hub, exit_entry: Agency) -> None:
    for header in ("Basic", "Basic !!!", "Basic " + "QQ==", "Bearer x", "Basic " + "A" * 5000):
        response = await hub.http.post(
            "/oauth/token", data={"grant_type": "client_credentials"},
            headers={"Authorization": header},
        )
        assert response.status_code == 401
        assert response.json()["error"] == "invalid_client"


async def test_issue_token_for_the_cli(hub: Hub, exit_entry: Agency) -> None:
    token = await hub.service.issue_token(exit_entry.client_id, scope="permit:validity")
    assert (await hub.call(token)).json()["scopes"] == ["permit:validity"]
    await hub.service.disable_client(exit_entry.client_id)
    try:
        await hub.service.issue_token(exit_entry.client_id)
    except InvalidClient:
        pass
    else:
        raise AssertionError("a disabled client got a token")
