"""The client registry: scopes are checked, secrets are argon2 hashes and shown once."""

from __future__ import annotations

from datetime import date

import pytest
from argon2 import PasswordHasher

import auth
from auth import SCOPES, RegistryError, UnknownClient
from tests.auth.conftest import Agency, Hub, agency_key


async def test_secrets_are_stored_as_argon2_hashes(hub: Hub, exit_entry: Agency) -> None:
    client = await hub.service.get_client(exit_entry.client_id)
    assert client.secret_hash is not None and client.secret_hash.startswith("$argon2id$")
    assert PasswordHasher().verify(client.secret_hash, exit_entry.secret)
    assert exit_entry.secret not in repr(await hub.service.list_clients())
    assert len(exit_entry.secret) >= 40


def test_a_hub_hashes_secrets_at_argon2_defaults_unless_told_otherwise() -> None:
    """The suite hashes cheaply (tests/services.py); a hub left at its settings does not."""
    from auth._passwords import SecretHasher
    from hub.settings import Settings

    config = Settings().auth_config()
    hasher = SecretHasher(
        config.secret_hash_time_cost, config.secret_hash_memory_kib,
        config.secret_hash_parallelism,
    )
    stored = hasher.hash("s3cret")
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    # Each hash carries its cost: a hub whose cost was changed still verifies the old ones.
    cheap = SecretHasher(1, 1024, 1)
    assert cheap.verify(stored, "s3cret") and not cheap.verify(stored, "s3cret!")
    assert hasher.verify(cheap.hash("other"), "other")
    assert not hasher.verify(None, "s3cret")  # an unknown client: a verification, refused
    with pytest.raises(ValueError, match="secret hash cost"):
        Settings(secret_hash_memory_kib=4).auth_config()


async def test_unknown_scopes_are_refused(hub: Hub) -> None:
    with pytest.raises(RegistryError, match="unknown scopes: permit:everything"):
        await hub.service.add_client("x", "X", ["permit:everything"], ["p"])
    with pytest.raises(RegistryError):
        await hub.service.add_client("x", "X", ["permit:validity"], [])
    assert await hub.service.list_clients() == []


async def test_registry_operations(hub: Hub, exit_entry: Agency) -> None:
    embargo = date(2030, 1, 1)
    client, secret = await hub.service.add_client(
        "si-agency-yichang", "Yichang SI", ["enrollment:read"], ["enrollment"],
        public_key=agency_key().as_dict(private=False), embargoed_until=embargo,
        webhook_url="https://si.yichang.test/hook",
    )
    assert secret is None and client.auth_method == "private_key_jwt"
    assert client.embargoed_until == embargo

    changed = await hub.service.set_scopes("si-agency-yichang", ["enrollment:read",
                                                                  "enrollment:write"])
    disabled = await hub.service.disable_client("si-agency-yichang")

    assert changed.scopes == {"enrollment:read", "enrollment:write"}
    assert disabled.enabled is False
    assert [c.client_id for c in await hub.service.list_clients()] == [
        "exit-entry-wuhan", "si-agency-yichang"]
    with pytest.raises(UnknownClient):
        await hub.service.disable_client("nobody")
    with pytest.raises(RegistryError, match="already exists"):
        await hub.service.add_client("exit-entry-wuhan", "X", ["permit:validity"], ["p"])
    assert {e.kind for e in hub.events} == {"client_changed"}


async def test_a_client_serves_the_regions_it_was_registered_for(hub: Hub) -> None:
    wuhan, _ = await hub.service.add_client(
        "si-agency-wuhan", "Wuhan SI", ["enrollment:read"], ["enrollment"],
        jurisdiction=["420100", "42", "420100"],
    )
    assert wuhan.jurisdiction == ("42", "420100")
    assert (await hub.service.get_client("si-agency-wuhan")).jurisdiction == ("42", "420100")

    moved = await hub.service.set_jurisdiction("si-agency-wuhan", ["420500"])
    assert moved.jurisdiction == ("420500",)
    assert [c.jurisdiction for c in await hub.service.list_clients()] == [("420500",)]
    changed = [e for e in hub.events if e.kind == "client_changed"]
    assert changed[-1].client_id == "si-agency-wuhan"
    assert changed[-1].detail == "jurisdiction: +420500 -42 -420100"


@pytest.mark.parametrize(
    ("prefixes", "message"),
    [
        ([], "at least one region prefix"),
        (["4201"], None),
        (["420"], "not a region prefix: 420 "),
        (["4201001"], "not a region prefix: 4201001 "),
        (["wuhan"], "not a region prefix: wuhan "),
        (["42", "*"], r"\* \(national\) stands alone"),
        (["\uff14\uff12"], "not a region prefix"),  # full-width digits are not GB/T 2260 codes
    ],
)
async def test_a_jurisdiction_is_region_prefixes_or_national_alone(
    hub: Hub, prefixes: list[str], message: str | None
) -> None:
    if message is None:
        client, _ = await hub.service.add_client("x", "X", ["permit:validity"], ["p"],
                                                 jurisdiction=prefixes)
        assert client.jurisdiction == tuple(prefixes)
        return
    with pytest.raises(RegistryError, match=message):
        await hub.service.add_client("x", "X", ["permit:validity"], ["p"], jurisdiction=prefixes)
    assert await hub.service.list_clients() == []
    await hub.service.add_client("x", "X", ["permit:validity"], ["p"], jurisdiction=["42"])
    with pytest.raises(RegistryError, match=message):
        await hub.service.set_jurisdiction("x", prefixes)
    assert (await hub.service.get_client("x")).jurisdiction == ("42",)


async def test_private_keys_are_not_accepted_as_client_keys(hub: Hub) -> None:
    with pytest.raises(RegistryError, match="public keys only"):
        await hub.service.add_client("x", "X", ["permit:validity"], ["p"],
                                     public_key=agency_key().as_dict(private=True))


CONTRACT_SCOPES = {
    "permit:validity", "permit:holder", "permit:detail", "person:identity", "enrollment:read",
    "enrollment:write", "card:status", "card:read", "card:write", "audit:read",
    "events:publish", "events:subscribe",
}


def test_scopes_are_the_design_table_plus_the_data_tracker_operations_and_persons() -> None:
    assert {"audit:subject", "ops:read", "self:read", "self:subscribe"} | CONTRACT_SCOPES == SCOPES


def test_all_is_sorted_and_public() -> None:
    assert auth.__all__ == sorted(auth.__all__, key=lambda n: (not n.isupper(), n[0].islower(), n))
    assert all(not name.startswith("_") and hasattr(auth, name) for name in auth.__all__)


async def test_a_client_is_registered_only_for_registered_purposes(hub: Hub) -> None:
    with pytest.raises(RegistryError, match="purposes not registered: curiosity gossip"):
        await hub.service.add_client("x", "X", ["permit:validity"], ["p", "gossip", "curiosity"])
    assert await hub.service.list_clients() == []
    client, _ = await hub.service.add_client("x", "X", ["permit:validity"], ["p"])
    with pytest.raises(RegistryError, match="purposes not registered: gossip"):
        await hub.service.set_purposes("x", ["p", "gossip"])
    assert (await hub.service.get_client("x")).purposes == {"p"}
    assert client.purpose_operations == {"p": frozenset({"permit"})}


async def test_a_purpose_change_reaches_the_claims_of_a_token_already_issued(
    hub: Hub, exit_entry: Agency
) -> None:
    token = await hub.access_token(exit_entry.client_id, exit_entry.secret)
    before = await hub.service.identify(f"Bearer {token}")
    await hub.service.set_purpose_operations("investigation", ["permit", "foreigner"])
    after = await hub.service.identify(f"Bearer {token}")
    assert before.operations_of("investigation") == {"permit"}
    assert after.operations_of("investigation") == {"permit", "foreigner"}
    assert after.operations_of("residence-permit") == {"permit"}
    assert after.operations_of("audit") == frozenset()  # not one of its purposes
    changed = [e for e in hub.events if e.kind == "purpose_changed"]
    assert [(e.purpose, e.operations) for e in changed] == [
        ("investigation", ("foreigner", "permit"))
    ]


async def test_a_purpose_names_well_formed_operations(hub: Hub) -> None:
    with pytest.raises(RegistryError, match="unknown operations: no-such"):
        await hub.service.add_purpose("q", ["permit", "no-such"])
    with pytest.raises(RegistryError, match="already exists"):
        await hub.service.add_purpose("p", ["permit"])
    with pytest.raises(auth.errors.UnknownPurpose):
        await hub.service.set_purpose_operations("nobody", ["permit"])
    officer = await hub.service.add_purpose("q", [], needs_officer=True)
    assert (officer.operations, officer.needs_officer) == (frozenset(), True)
    assert [p.name for p in await hub.service.list_purposes()][-2:] == ["q", "residence-permit"]
