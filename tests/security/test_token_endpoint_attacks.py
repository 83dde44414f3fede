"""Attacks on the OAuth endpoints, each reproduced against a whole hub over ASGI.

Each test sends what an attacker sent in a black-box test, checks that it is refused with an
RFC 6749 error (never a 500), that the legitimate agency is still served, and that the attempt
is in the audit log with the attacker's address. The attacker and the agency call from
different client addresses (the ASGI client address is what the throttle counts by).
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from authlib.oauth2.rfc7523 import private_key_jwt_sign
from joserfc import jwt
from joserfc.jwk import ECKey

from auth import RegistryError
from hub.app import create_app
from hub.components import Hub
from hub.demo_clients import seed_demo_clients
from hub.settings import Settings
from observability.audit import AuditFilter, AuditRecord
from tests.conftest import Simulators, _drop_prefix, hub_settings

AGENCY_ADDRESS = "10.20.0.5"
ATTACKER_ADDRESS = "203.0.113.66"
TOKEN_URL = "http://127.0.0.1:8000/oauth/token"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
LIMIT = 3  # failed authentications per minute, per address and per client id
GRANT = {"grant_type": "client_credentials"}


@dataclass
class Scene:
    hub: Hub
    app: object
    secrets: dict[str, str]
    agency: httpx.AsyncClient  # exit-entry-wuhan, from its own gateway
    attacker: httpx.AsyncClient

    def client_at(self, address: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=self.app, client=(address, 40000))  # type: ignore[arg-type]
        return httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000")

    async def agency_is_served(self, client_id: str = "exit-entry-wuhan") -> None:
        """The agency gets a token from its address and uses it on /graphql."""
        response = await self.agency.post(
            "/oauth/token", data=GRANT, auth=(client_id, self.secrets[client_id])
        )
        assert response.status_code == 200, response.text
        answer = await self.agency.post(
            "/graphql", json={"query": "{ __typename }"},
            headers={"Authorization": f"Bearer {response.json()['access_token']}",
                     "X-Purpose-Of-Use": "residence-permit-check"},
        )
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"data": {"__typename": "Query"}}

    async def audited(self, operation: str) -> list[AuditRecord]:
        page = await self.hub.audit.search(
            AuditFilter(operation=operation), 500, None, subject_view=False,
            today=dt.date.today(),
        )
        return sorted(page.records, key=lambda r: r.seq)


@pytest.fixture
async def scene(
    simulators: Simulators, database_url: str, tmp_path: Path
) -> AsyncIterator[Scene]:
    prefix = f"test:{uuid.uuid4().hex[:12]}:"
    settings = hub_settings(simulators, database_url, tmp_path, prefix)
    settings = Settings(**(settings.model_dump() | {
        "auth_failures_per_minute": LIMIT, "auth_max_concurrent_hashes": 1,
    }))
    app = create_app(settings)
    try:
        async with LifespanManager(app, startup_timeout=30) as manager:
            hub: Hub = app.state.hub
            seeded = await seed_demo_clients(hub.auth)
            secrets = {str(c["client_id"]): str(c["client_secret"]) for c in seeded}
            scene = Scene(hub, manager.app, secrets, None, None)  # type: ignore[arg-type]
            async with scene.client_at(AGENCY_ADDRESS) as agency, scene.client_at(
                ATTACKER_ADDRESS
            ) as attacker:
                scene.agency, scene.attacker = agency, attacker
                yield scene
    finally:
        await _drop_prefix(prefix)


def _basic(raw: bytes) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(raw).decode("ascii")}


def _assert_invalid_client(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "invalid_client"
    assert response.headers["cache-control"] == "no-store"


def _assert_throttled(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    assert response.json()["error"] == "invalid_client"
    assert 1 <= int(response.headers["retry-after"]) <= 60
    assert response.headers["cache-control"] == "no-store"


async def test_a_flood_of_bad_credentials_is_throttled_by_address_and_audited(
    scene: Scene,
) -> None:
    for _ in range(LIMIT):
        _assert_invalid_client(
            await scene.attacker.post("/oauth/token", data=GRANT, auth=("no-such-agency", "x"))
        )

    refused = [
        await scene.attacker.post("/oauth/token", data=GRANT, auth=("no-such-agency", "y")),
        await scene.attacker.post("/oauth/token", data=GRANT, auth=("another-guess", "z")),
        await scene.attacker.post("/oauth/revoke", data={"token": "t"}, auth=("guess", "z")),
        # Even the right secret is not heard from this address now: nothing is checked.
        await scene.attacker.post(
            "/oauth/token", data=GRANT,
            auth=("exit-entry-wuhan", scene.secrets["exit-entry-wuhan"]),
        ),
    ]

    for response in refused:
        _assert_throttled(response)
    await scene.agency_is_served()
    throttled = await scene.audited("client_throttled")
    assert len(throttled) == len(refused)
    assert {r.client_address for r in throttled} == {ATTACKER_ADDRESS}
    assert {r.outcome for r in throttled} == {"DENIED"}
    assert sorted(str(r.client_id) for r in throttled) == [
        "another-guess", "exit-entry-wuhan", "guess", "no-such-agency"
    ]
    failed = await scene.audited("token_refused")
    assert [(r.client_id, r.client_address) for r in failed] == [
        ("no-such-agency", ATTACKER_ADDRESS)
    ] * LIMIT
    assert (await scene.hub.audit.verify()).ok


async def test_hammering_a_known_client_id_does_not_lock_the_agency_out(scene: Scene) -> None:
    await scene.agency_is_served()  # its gateway's address is now known for its id
    addresses = [f"198.51.100.{n}" for n in range(1, LIMIT + 1)]
    for address in addresses:  # one failure from each: no address reaches its own limit
        async with scene.client_at(address) as attacker:
            _assert_invalid_client(
                await attacker.post("/oauth/token", data=GRANT, auth=("exit-entry-wuhan", "x"))
            )

    async with scene.client_at("198.51.100.200") as newcomer:
        refused = await newcomer.post(
            "/oauth/token", data=GRANT,
            auth=("exit-entry-wuhan", scene.secrets["exit-entry-wuhan"]),
        )
        other = await newcomer.post(
            "/oauth/token", data=GRANT,
            auth=("si-agency-wuhan", scene.secrets["si-agency-wuhan"]),
        )

    # The id is throttled for unknown addresses, not for the agency's own gateway.
    _assert_throttled(refused)
    assert other.status_code == 200
    await scene.agency_is_served()
    [throttled] = await scene.audited("client_throttled")
    assert (throttled.client_id, throttled.client_address) == (
        "exit-entry-wuhan", "198.51.100.200"
    )


async def test_a_burst_arriving_at_once_is_cut_at_the_limit_too(scene: Scene) -> None:
    burst = await asyncio.gather(*(
        scene.attacker.post("/oauth/token", data=GRANT, auth=("no-such-agency", f"guess{n}"))
        for n in range(10)
    ))

    # One hashing slot: each waiting attempt looks at the counts again when its turn comes.
    assert sorted(r.status_code for r in burst) == [401] * LIMIT + [429] * (10 - LIMIT)
    assert len(await scene.audited("token_refused")) == LIMIT
    assert len(await scene.audited("client_throttled")) == 10 - LIMIT
    await scene.agency_is_served()


@pytest.mark.parametrize("path", ["/oauth/token", "/oauth/revoke"])
async def test_basic_credentials_that_are_not_utf8_are_invalid_client(
    scene: Scene, path: str
) -> None:
    for raw in (b"\xff\xfe:x", b"exit-entry-wuhan:\xff", b"\xc3(:\xa0\xa1"):
        response = await scene.attacker.post(path, data={**GRANT, "token": "t"},
                                             headers=_basic(raw))
        _assert_invalid_client(response)
        assert response.headers["www-authenticate"].startswith("Basic ")

    await scene.agency_is_served()
    operation = "token_refused" if path == "/oauth/token" else "revocation_refused"
    records = await scene.audited(operation)
    assert [(r.client_id, r.client_address, r.error_codes) for r in records] == [
        (None, ATTACKER_ADDRESS, ("invalid_client",))
    ] * 3


async def test_a_client_id_with_a_nul_or_odd_characters_is_invalid_client(scene: Scene) -> None:
    secret = scene.secrets["exit-entry-wuhan"]
    responses = [
        await scene.attacker.post(
            "/oauth/token", content=b"grant_type=client_credentials&client_id=a%00b"
            b"&client_secret=x", headers={"content-type": "application/x-www-form-urlencoded"},
        ),
        await scene.attacker.post("/oauth/token", data=GRANT,
                                  headers=_basic(b"exit-entry-wuhan\x00:" + secret.encode())),
        await scene.attacker.post("/oauth/revoke", data={"token": "t", "client_id": "a\x00b",
                                                         "client_secret": "x"}),
    ]

    for response in responses:
        _assert_invalid_client(response)
    await scene.agency_is_served()
    refused = await scene.audited("token_refused") + await scene.audited("revocation_refused")
    # Recorded as claimed, made printable by the audit record's bounds: who tried, and from where.
    assert [(r.client_id, r.client_address) for r in refused] == [
        ("a\ufffdb", ATTACKER_ADDRESS),
        ("exit-entry-wuhan\ufffd", ATTACKER_ADDRESS),
        ("a\ufffdb", ATTACKER_ADDRESS),
    ]
    with pytest.raises(RegistryError):
        await scene.hub.auth.add_client("a\x00b", "Nobody", ["permit:validity"], ["audit"])


async def test_a_client_assertion_without_iat_cannot_live_for_a_year(scene: Scene) -> None:
    key = ECKey.generate_key("P-256", {"kid": "agency-1", "alg": "ES256"}, private=True)
    await scene.hub.auth.add_client(
        "key-agency", "Key Agency", ["permit:validity"], ["residence-permit-check"],
        public_key=key.as_dict(private=False),
    )
    now = int(time.time())
    year = now + 365 * 86400
    forms = [
        {"iss": "key-agency", "sub": "key-agency", "aud": TOKEN_URL, "exp": year,
         "jti": uuid.uuid4().hex},
        {"iss": "key-agency", "sub": "key-agency", "aud": TOKEN_URL, "exp": year, "iat": now,
         "jti": uuid.uuid4().hex},
    ]
    for claims in forms:
        assertion = jwt.encode({"alg": "ES256", "kid": "agency-1"}, claims, key)
        response = await scene.attacker.post("/oauth/token", data={
            **GRANT, "client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion})
        _assert_invalid_client(response)

    good = private_key_jwt_sign(key, "key-agency", TOKEN_URL, alg="ES256")
    served = await scene.agency.post("/oauth/token", data={
        **GRANT, "client_assertion_type": ASSERTION_TYPE, "client_assertion": good})
    assert served.status_code == 200, served.text
    refused = await scene.audited("token_refused")
    assert [(r.client_id, r.client_address) for r in refused] == [
        ("key-agency", ATTACKER_ADDRESS)
    ] * 2


async def test_revoking_another_clients_token_looks_like_revoking_junk(scene: Scene) -> None:
    response = await scene.agency.post(
        "/oauth/token", data=GRANT,
        auth=("exit-entry-wuhan", scene.secrets["exit-entry-wuhan"]),
    )
    token = response.json()["access_token"]
    auditor = ("auditor-hubei", scene.secrets["auditor-hubei"])

    foreign = await scene.attacker.post("/oauth/revoke", data={"token": token}, auth=auditor)
    junk = await scene.attacker.post("/oauth/revoke", data={"token": "junk"}, auth=auditor)

    assert foreign.status_code == junk.status_code == 200
    assert foreign.content == junk.content
    assert dict(foreign.headers) == dict(junk.headers)
    answer = await scene.agency.post(
        "/graphql", json={"query": "{ __typename }"},
        headers={"Authorization": f"Bearer {token}", "X-Purpose-Of-Use": "residence-permit-check"},
    )
    assert answer.status_code == 200  # not revoked
    assert await scene.audited("token_revoked") == []
    [refused] = await scene.audited("revocation_refused")
    assert (refused.client_id, refused.client_address, refused.error_codes) == (
        "auditor-hubei", ATTACKER_ADDRESS, ("invalid_grant",)
    )


async def test_several_authentication_methods_in_one_request_are_refused_unheard(
    scene: Scene,
) -> None:
    # authlib would try Basic, then the form's secret: two argon2 checks for one request.
    both = await scene.attacker.post(
        "/oauth/token", data={**GRANT, "client_id": "no-such-agency", "client_secret": "x"},
        auth=("no-such-agency", "y"),
    )
    with_assertion = await scene.attacker.post(
        "/oauth/token", data={**GRANT, "client_assertion_type": ASSERTION_TYPE,
                              "client_assertion": "a.b.c"}, auth=("no-such-agency", "y"),
    )

    for response in (both, with_assertion):
        assert response.status_code == 400, response.text
        assert response.json()["error"] == "invalid_request"
    await scene.agency_is_served()
    refused = await scene.audited("token_refused")
    assert [(r.client_id, r.error_codes) for r in refused] == [
        ("no-such-agency", ("invalid_request",))
    ] * 2
