"""Token exchange (RFC 8693) through a whole hub, with the simulated identity providers served
over real HTTP: officers and a foreigner get tokens naming them, and every attack on the grant
is refused with its OAuth error and audited."""

from __future__ import annotations

import base64
import datetime as dt
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet

from observability.audit import AuditFilter, AuditRecord
from simulators import IdentityProviders
from tests.conftest import HubClient, Simulators, demo_identity_providers, open_hub

HUB = "http://127.0.0.1:8000"
EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
JWT_TYPE = "urn:ietf:params:oauth:token-type:jwt"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
VALIDITY = "query($n: ID!) { permit(number: $n) { isValid } }"


@dataclass
class Scene:
    hub: HubClient
    identity: IdentityProviders
    idp_url: str
    idp: httpx.AsyncClient

    async def officer_assertion(self, client_id: str, officer: str) -> str:
        response = await self.idp.post(
            "/officers/assertion", json={"client_id": client_id, "officer": officer})
        assert response.status_code == 200, response.text
        return str(response.json()["assertion"])

    async def essc(self, permit: str, name: str) -> httpx.Response:
        return await self.idp.post("/essc/assertion", json={"permitNumber": permit, "name": name})

    def claims(
        self, provider: str, subject: str, roles: list[str], **changes: Any
    ) -> dict[str, Any]:
        claims = self.identity.claims(self.idp_url, provider, subject, roles)
        claims.update(changes)
        return {k: v for k, v in claims.items() if v is not None}

    def assertion(self, provider: str, subject: str, roles: list[str], **changes: Any) -> str:
        return self.identity.sign(provider, self.claims(provider, subject, roles, **changes))

    async def exchange(self, client_id: str, subject_token: str, **form: str) -> httpx.Response:
        data = {"grant_type": EXCHANGE, "subject_token": subject_token,
                "subject_token_type": JWT_TYPE, **form}
        return await self.hub.http.post(
            "/oauth/token", data=data, auth=(client_id, self.hub.secrets[client_id]))

    async def refusals(self) -> list[AuditRecord]:
        page = await self.hub.hub.audit.search(
            AuditFilter(operation="token_refused"), 500, None, subject_view=False,
            today=dt.date.today(),
        )
        return sorted(page.records, key=lambda r: r.seq)

    async def hub_claims(self, token: str) -> dict[str, Any]:
        """The token's claims, verified against the hub's published JWKS."""
        keys = KeySet.import_key_set((await self.hub.http.get("/.well-known/jwks.json")).json())
        decoded = jwt.decode(token, keys, algorithms=["ES256"])
        assert decoded.header["typ"] == "at+jwt"
        return dict(decoded.claims)


@pytest.fixture
async def scene(
    simulators: Simulators, database_url: str, tmp_path: Path
) -> AsyncIterator[Scene]:
    async with open_hub(simulators, database_url, tmp_path) as hub, demo_identity_providers(
        hub.hub.auth, simulators.dataset
    ) as (identity, idp_url, idp):
        yield Scene(hub, identity, idp_url, idp)


async def test_an_officer_gets_a_short_token_naming_them_and_their_agency(scene: Scene) -> None:
    assertion = await scene.officer_assertion("exit-entry-wuhan", "PS-0001")

    response = await scene.exchange("exit-entry-wuhan", assertion)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["issued_token_type"] == ACCESS_TOKEN_TYPE
    assert body["token_type"] == "Bearer" and body["expires_in"] == 300
    claims = await scene.hub_claims(body["access_token"])
    assert claims["iss"] == HUB and claims["sub"] == "PS-0001"
    assert claims["act"] == {"sub": "exit-entry-wuhan"}
    assert claims["client_id"] == "exit-entry-wuhan"
    assert claims["actor_kind"] == "officer"
    # the client's scopes that the border-officer role opens (here: all three of the role's)
    assert set(claims["scope"].split()) == {"permit:validity", "permit:holder", "card:status"}
    assert claims["exp"] - claims["iat"] == 300
    # The token works at /graphql, and the caller behind it is the officer.
    principal = await scene.hub.hub.auth.authenticate(f"Bearer {body['access_token']}")
    assert (principal.actor, principal.actor_kind) == ("PS-0001", "OFFICER")
    answer = await scene.hub.http.post(
        "/graphql",
        json={"query": VALIDITY, "variables": {"n": _wuhan_valid_permit(scene)}},
        headers={"Authorization": f"Bearer {body['access_token']}",
                 "X-Purpose-Of-Use": "investigation", "X-Case-Reference": "WH-2026-0001"},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["data"]["permit"]["isValid"] is True


def _sample(scene: Scene, name: str) -> str:
    return scene.identity.dataset.samples[name]


def _wuhan_valid_permit(scene: Scene) -> str:
    """A valid permit of a Wuhan employer: in the exit-entry administration's jurisdiction."""
    dataset = scene.identity.dataset
    return next(p.number for p in dataset.permits.values()
                if p.work_location == "420100" and p.is_valid_on(dataset.today))


async def test_an_officer_may_ask_for_fewer_scopes_than_the_role_opens(scene: Scene) -> None:
    assertion = await scene.officer_assertion("si-agency-wuhan", "SI-0001")

    response = await scene.exchange("si-agency-wuhan", assertion, scope="enrollment:read")

    assert response.status_code == 200, response.text
    claims = await scene.hub_claims(response.json()["access_token"])
    assert claims["scope"] == "enrollment:read"
    assert claims["sub"] == "SI-0001" and claims["act"] == {"sub": "si-agency-wuhan"}


async def test_a_foreigner_verified_by_name_gets_a_self_token_that_reads_nothing_yet(
    scene: Scene,
) -> None:
    permit = scene.identity.dataset.permits[_sample(scene, "valid_permit")]
    verified = await scene.essc(permit.number, f"  {permit.holder.name.upper()} ")
    assert verified.status_code == 200, verified.text

    response = await scene.exchange("essc-app", verified.json()["assertion"])

    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    claims = await scene.hub_claims(token)
    assert claims["sub"] == permit.holder.id
    assert claims["act"] == {"sub": "essc-app"} and claims["actor_kind"] == "subject"
    assert set(claims["scope"].split()) == {"self:read", "self:subscribe"}
    principal = await scene.hub.hub.auth.authenticate(f"Bearer {token}")
    assert (principal.actor, principal.actor_kind) == (permit.holder.id, "SUBJECT")
    # The person's own permit is open to them (tests/hub/test_self_rows.py: nobody else's).
    answer = await scene.hub.http.post(
        "/graphql", json={"query": VALIDITY, "variables": {"n": permit.number}},
        headers={"Authorization": f"Bearer {token}", "X-Purpose-Of-Use": "self-service"},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"data": {"permit": {"isValid": True}}}


async def test_the_real_name_check_refuses_a_wrong_name_or_an_unknown_permit(
    scene: Scene,
) -> None:
    permit = scene.identity.dataset.permits[_sample(scene, "valid_permit")]
    other = scene.identity.dataset.permits[_sample(scene, "enrolled_permit")]
    assert other.holder.name != permit.holder.name

    for number, name in ((permit.number, other.holder.name), ("420100000000000000", "Anyone")):
        refused = await scene.essc(number, name)
        assert refused.status_code == 403
        assert refused.json() == {"error": "identity_not_verified"}


async def test_the_essc_app_gets_no_token_without_a_person(scene: Scene) -> None:
    response = await scene.hub.http.post(
        "/oauth/token", data={"grant_type": "client_credentials"},
        auth=("essc-app", scene.hub.secrets["essc-app"]),
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"


async def test_a_refused_exchange_does_not_use_up_the_assertion(scene: Scene) -> None:
    assertion = await scene.officer_assertion("exit-entry-wuhan", "PS-0001")

    too_wide = await scene.exchange("exit-entry-wuhan", assertion, scope="permit:detail")
    assert too_wide.status_code == 400 and too_wide.json()["error"] == "invalid_scope"

    assert (await scene.exchange("exit-entry-wuhan", assertion)).status_code == 200


def _none_alg(claims: dict[str, Any], kid: str) -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT', 'kid': kid})}.{part(claims)}."


def _forged(scene: Scene, provider: str, claims: dict[str, Any]) -> str:
    """Right kid, right claims, an attacker's key."""
    real_kid = scene.identity.jwks(provider)["keys"][0]["kid"]
    key = ECKey.generate_key("P-256", {"kid": real_kid, "alg": "ES256"}, private=True)
    return jwt.encode({"alg": "ES256", "kid": real_kid}, claims, key)


async def _attack(scene: Scene, name: str) -> tuple[str, str, dict[str, str]]:
    """(client, subject token, extra form) of attack `name`."""
    now = int(time.time())
    officer = scene.claims("exit-entry-wuhan", "PS-0001", ["border-officer"])
    sign = scene.identity.sign
    if name == "forged":
        return "exit-entry-wuhan", _forged(scene, "exit-entry-wuhan", officer), {}
    if name == "unsigned":
        kid = scene.identity.jwks("exit-entry-wuhan")["keys"][0]["kid"]
        return "exit-entry-wuhan", _none_alg(officer, kid), {}
    if name == "expired":
        token = scene.assertion("exit-entry-wuhan", "PS-0001", ["border-officer"],
                                iat=now - 400, exp=now - 100)
        return "exit-entry-wuhan", token, {}
    if name == "too long-lived":
        token = scene.assertion("exit-entry-wuhan", "PS-0001", ["border-officer"],
                                exp=now + 86400)
        return "exit-entry-wuhan", token, {}
    if name == "without jti":
        return "exit-entry-wuhan", scene.assertion(
            "exit-entry-wuhan", "PS-0001", ["border-officer"], jti=None), {}
    if name == "replayed":
        token = await scene.officer_assertion("exit-entry-wuhan", "PS-0001")
        assert (await scene.exchange("exit-entry-wuhan", token)).status_code == 200
        return "exit-entry-wuhan", token, {}
    if name == "wrong audience":
        return "exit-entry-wuhan", scene.assertion(
            "exit-entry-wuhan", "PS-0001", ["border-officer"], aud="https://other-hub.test"), {}
    if name == "unknown issuer":
        return "exit-entry-wuhan", sign("exit-entry-wuhan", officer | {
            "iss": "https://idp.unknown.test"}), {}
    if name == "another client's IdP":
        token = await scene.officer_assertion("exit-entry-wuhan", "PS-0001")
        return "si-agency-wuhan", token, {}
    if name == "the e-SSC verifier for an agency":
        return "exit-entry-wuhan", scene.assertion("essc", "FRN000000001", ["foreigner"]), {}
    if name == "role escalation: an unmapped role":
        return "exit-entry-wuhan", scene.assertion(
            "exit-entry-wuhan", "PS-0001", ["administrator"]), {}
    if name == "role escalation: a scope beyond the role":
        token = await scene.officer_assertion("si-agency-wuhan", "SI-0001")
        return "si-agency-wuhan", token, {"scope": "permit:detail"}
    if name == "role escalation: an agency role from the e-SSC verifier":
        return "essc-app", scene.assertion("essc", "FRN000000001", ["border-officer"]), {}
    if name == "access token as subject token":
        return "exit-entry-wuhan", await scene.hub.token("exit-entry-wuhan"), {}
    if name == "act spoofing":
        return "exit-entry-wuhan", scene.assertion(
            "exit-entry-wuhan", "PS-0001", ["border-officer"], act={"sub": "si-agency-wuhan"}), {}
    if name == "may_act spoofing":
        return "exit-entry-wuhan", scene.assertion(
            "exit-entry-wuhan", "PS-0001", ["border-officer"],
            may_act={"sub": "si-agency-wuhan"}), {}
    if name == "issued for another client":
        return "exit-entry-wuhan", scene.assertion(
            "exit-entry-wuhan", "PS-0001", ["border-officer"], azp="si-agency-wuhan"), {}
    if name == "wrong subject token type":
        token = await scene.officer_assertion("exit-entry-wuhan", "PS-0001")
        return "exit-entry-wuhan", token, {"subject_token_type": ACCESS_TOKEN_TYPE}
    if name == "an actor token":
        token = await scene.officer_assertion("exit-entry-wuhan", "PS-0001")
        return "exit-entry-wuhan", token, {"actor_token": token, "actor_token_type": JWT_TYPE}
    if name == "another audience asked for":
        token = await scene.officer_assertion("exit-entry-wuhan", "PS-0001")
        return "exit-entry-wuhan", token, {"audience": "https://other-hub.test"}
    if name == "a client without identity providers":
        token = await scene.officer_assertion("exit-entry-wuhan", "PS-0001")
        return "si-agency-yichang", token, {}
    raise AssertionError(name)


ATTACKS = {
    "forged": ("invalid_request", "invalid subject token signature"),
    "unsigned": ("invalid_request", "invalid subject token signature"),
    "expired": ("invalid_request", "subject token expired"),
    "too long-lived": ("invalid_request", "subject token lifetime too long"),
    "without jti": ("invalid_request", "invalid subject token claim jti"),
    "replayed": ("invalid_request", "subject token already used"),
    "wrong audience": ("invalid_request", "subject token audience is not the hub"),
    "unknown issuer": ("invalid_request", "unknown issuer"),
    "another client's IdP": ("invalid_request", "issuer not trusted for this client"),
    "the e-SSC verifier for an agency": ("invalid_request", "issuer not trusted for this client"),
    "role escalation: an unmapped role": (
        "invalid_scope", "the asserted roles open none of this client's scopes"),
    "role escalation: a scope beyond the role": (
        "invalid_scope", "scope beyond what the asserted roles open"),
    "role escalation: an agency role from the e-SSC verifier": (
        "invalid_scope", "the asserted roles open none of this client's scopes"),
    "access token as subject token": ("invalid_request", "an access token is not a subject token"),
    "act spoofing": ("invalid_request", "a subject token may not name an actor"),
    "may_act spoofing": ("invalid_request", "a subject token may not name an actor"),
    "issued for another client": ("invalid_request", "subject token issued for another client"),
    "wrong subject token type": ("invalid_request", f"subject_token_type must be {JWT_TYPE}"),
    "an actor token": ("invalid_request", "no actor_token: the authenticated client is the actor"),
    "another audience asked for": (
        "invalid_target", "audience: the hub issues tokens for itself only"),
    "a client without identity providers": (
        "unauthorized_client", "no identity provider is registered for this client"),
}


@pytest.mark.parametrize("attack", ATTACKS)
async def test_an_attack_on_the_exchange_is_refused_and_audited(scene: Scene, attack: str) -> None:
    error, description = ATTACKS[attack]
    client_id, subject_token, form = await _attack(scene, attack)
    before = len(await scene.refusals())

    response = await scene.exchange(client_id, subject_token, **form)

    assert response.status_code == 400, response.text
    assert response.json() == {"error": error, "error_description": description}
    assert response.headers["cache-control"] == "no-store"
    refusals = await scene.refusals()
    assert len(refusals) == before + 1
    assert (refusals[-1].client_id, refusals[-1].outcome) == (client_id, "DENIED")
    assert refusals[-1].error_codes == (error,)


async def test_an_assertion_is_not_an_access_token(scene: Scene) -> None:
    assertion = await scene.officer_assertion("exit-entry-wuhan", "PS-0001")

    response = await scene.hub.http.post(
        "/graphql", json={"query": VALIDITY, "variables": {"n": _sample(scene, "valid_permit")}},
        headers={"Authorization": f"Bearer {assertion}", "X-Purpose-Of-Use": "investigation"},
    )

    assert response.status_code == 401, response.text
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    # and it was not used up: the officer can still exchange it
    assert (await scene.exchange("exit-entry-wuhan", assertion)).status_code == 200


async def test_an_assertion_signed_with_an_unpublished_key_is_refused(
    scene: Scene,
) -> None:
    stranger = ECKey.generate_key("P-256", {"kid": "not-published", "alg": "ES256"}, private=True)
    claims = scene.claims("exit-entry-wuhan", "PS-0001", ["border-officer"])
    token = jwt.encode({"alg": "ES256", "kid": "not-published"}, claims, stranger)

    response = await scene.exchange("exit-entry-wuhan", token)

    assert response.status_code == 400
    assert response.json()["error_description"] == "unknown signing key"


async def test_metadata_lists_the_grant(scene: Scene) -> None:
    metadata = (await scene.hub.http.get("/.well-known/oauth-authorization-server")).json()
    assert EXCHANGE in metadata["grant_types_supported"]
    assert {"self:read", "self:subscribe"} <= set(metadata["scopes_supported"])



async def test_an_unreachable_idp_jwks_is_a_retryable_503_not_a_refusal(scene: Scene) -> None:
    auth = scene.hub.hub.auth
    await auth.add_identity_provider(
        "si-agency-yichang", "https://sso.yichang.test", "officer",
        {"clerk": ["enrollment:read"]}, jwks_url="http://127.0.0.1:9/jwks.json",
    )
    key = ECKey.generate_key("P-256", {"kid": "yc-1", "alg": "ES256"}, private=True)
    claims = scene.claims("exit-entry-wuhan", "YC-0001", ["clerk"],
                          iss="https://sso.yichang.test")

    response = await scene.exchange(
        "si-agency-yichang", jwt.encode({"alg": "ES256", "kid": "yc-1"}, claims, key))

    assert response.status_code == 503, response.text
    assert response.json()["error"] == "temporarily_unavailable"
    assert response.headers["retry-after"] == "1"
