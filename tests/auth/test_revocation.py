"""RFC 7009 revocation, recorded in the hub database and carried by the shared-state stream to
every hub instance's replica of the denylist."""

from __future__ import annotations

from tests.auth.conftest import Agency, Hub, HubFactory, refused_within_a_second


async def test_revocation_on_one_instance_is_honoured_by_another(
    hub: Hub, exit_entry: Agency, make_hub: HubFactory
) -> None:
    other = await make_hub()
    token = await hub.access_token(exit_entry.client_id, exit_entry.secret)
    assert (await other.call(token)).status_code == 200  # verified and cached over there

    response = await hub.http.post("/oauth/revoke", data={"token": token},
                                   auth=(exit_entry.client_id, exit_entry.secret))

    assert response.status_code == 200
    assert hub.events[-1].kind == "token_revoked"
    assert token not in repr(hub.events)
    here = await hub.call(token)  # at once on the revoking instance
    there = await refused_within_a_second(other, token)  # once the stream brings it
    for answer in (here, there):
        assert answer.status_code == 401
        assert answer.json() == {"code": "UNAUTHENTICATED", "error": "invalid_token",
                                 "description": "token revoked"}


async def test_revoking_garbage_is_a_harmless_200(hub: Hub, exit_entry: Agency) -> None:
    before = await hub.snapshot()
    for token in ("garbage", "a.b.c", "x" * 10_000):
        response = await hub.http.post("/oauth/revoke", data={"token": token},
                                       auth=(exit_entry.client_id, exit_entry.secret))
        assert response.status_code == 200
    assert await hub.snapshot() == before


async def test_only_the_owner_can_revoke(hub: Hub, exit_entry: Agency) -> None:
    _, secret = await hub.service.add_client(
        "auditor-hubei", "Hubei Audit", ["audit:read"], ["audit"])
    assert secret is not None
    token = await hub.access_token(exit_entry.client_id, exit_entry.secret)

    response = await hub.http.post("/oauth/revoke", data={"token": token},
                                   auth=("auditor-hubei", secret))

    # Answered as junk is (RFC 7009): an `invalid_grant` would confirm the token is valid.
    assert response.status_code == 200
    assert response.json() == {}
    assert (await hub.call(token)).status_code == 200
    assert hub.events[-1].kind == "revocation_refused"
    assert hub.events[-1].client_id == "auditor-hubei"


async def test_revocation_needs_client_authentication(hub: Hub, exit_entry: Agency) -> None:
    token = await hub.access_token(exit_entry.client_id, exit_entry.secret)

    response = await hub.http.post("/oauth/revoke", data={"token": token},
                                   auth=(exit_entry.client_id, "wrong"))

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert (await hub.call(token)).status_code == 200
