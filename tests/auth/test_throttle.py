"""Throttling of failed client authentication: shared by instances, per minute, failing closed."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from auth import AuthService, RegistryError
from infra.kv import open_key_value
from tests.auth.conftest import Agency, Clock, Hub, HubFactory, config, protected_app


async def _fail(hub: Hub, times: int) -> None:
    for _ in range(times):
        response = await hub.token("no-such-agency", "guess")
        assert response.status_code == 401, response.text


async def test_failures_on_one_instance_throttle_the_others(
    make_hub: HubFactory, exit_entry: Agency
) -> None:
    first, second = await make_hub(config(failures_per_minute=2)), await make_hub(
        config(failures_per_minute=2)
    )
    await _fail(first, 2)

    response = await second.token("no-such-agency", "guess")

    assert response.status_code == 429
    assert response.json()["error"] == "invalid_client"
    assert second.events[-1].kind == "client_throttled"
    assert second.events[-1].client_id == "no-such-agency"


async def test_the_throttle_lifts_when_the_minute_is_over(
    make_hub: HubFactory, clock: Clock, exit_entry: Agency
) -> None:
    hub = await make_hub(config(failures_per_minute=2))
    await _fail(hub, 2)
    refused = await hub.token(exit_entry.client_id, exit_entry.secret)
    assert refused.status_code == 429
    wait = int(refused.headers["retry-after"])
    assert 1 <= wait <= 60

    clock.advance(wait)

    assert (await hub.token(exit_entry.client_id, exit_entry.secret)).status_code == 200
    await _fail(hub, 2)  # a new minute, a new count
    assert (await hub.token("no-such-agency", "guess")).status_code == 429


async def test_successes_and_other_errors_do_not_count_as_failures(
    make_hub: HubFactory, exit_entry: Agency
) -> None:
    hub = await make_hub(config(failures_per_minute=2))
    await _fail(hub, 1)
    for _ in range(4):
        assert (await hub.token(exit_entry.client_id, exit_entry.secret)).status_code == 200
        bad_scope = await hub.token(exit_entry.client_id, exit_entry.secret, scope="nope")
        assert bad_scope.status_code == 400

    await _fail(hub, 1)  # the second failure of the minute is still heard
    assert (await hub.token("no-such-agency", "guess")).status_code == 429


async def test_without_the_shared_store_secrets_are_still_checked(
    engine: AsyncEngine, exit_entry: Agency
) -> None:
    unreachable = open_key_value("redis://127.0.0.1:9/0")  # nothing listens on the discard port
    service = AuthService(engine, unreachable, config(failures_per_minute=1))
    try:
        await service.start()
        transport = httpx.ASGITransport(app=protected_app(service))
        async with httpx.AsyncClient(transport=transport, base_url="https://hub.test") as http:
            answers = [
                await http.post("/oauth/token", data={"grant_type": "client_credentials"},
                                auth=(exit_entry.client_id, secret))
                for secret in ("wrong", "wrong", exit_entry.secret)
            ]
    finally:
        await unreachable.close()
        await service.close()

    # Fails open, as the token endpoint did before it had a throttle (the hashing bound holds).
    assert [a.status_code for a in answers] == [401, 401, 200]


async def test_concurrent_secret_checks_wait_their_turn_and_all_succeed(
    make_hub: HubFactory, exit_entry: Agency
) -> None:
    # An agency's workers starting together: a burst of successes is never throttled.
    hub = await make_hub(config(max_concurrent_hashes=1, failures_per_minute=2))

    answers = await asyncio.gather(*(
        hub.token(exit_entry.client_id, exit_entry.secret) for _ in range(10)
    ))

    assert [a.status_code for a in answers] == [200] * 10


async def test_client_ids_the_registry_could_not_hold_are_never_looked_up(hub: Hub) -> None:
    for client_id in ("a\x00b", "A", "x" * 129, "", "é", "a b"):
        assert await hub.service.registry.find(client_id) is None
        with pytest.raises(RegistryError):
            await hub.service.add_client(client_id, "Nobody", ["permit:validity"], ["audit"])


def test_throttle_settings_must_be_positive() -> None:
    for bad in ({"failures_per_minute": 0}, {"max_concurrent_hashes": 0}):
        with pytest.raises(ValueError, match="at least 1"):
            config(**bad)
