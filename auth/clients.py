"""The client registry: which agencies may call the hub, how they authenticate, for what.

A client authenticates with a secret (stored as an argon2 hash), with a registered public key
(private_key_jwt, RFC 7523), or not at all here because its tokens come from a trusted external
identity provider. The registry never returns a secret except once, from `add_client`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import anyio.to_thread
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlalchemy import insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from auth import _passwords
from auth.errors import RegistryError, UnknownClient
from auth.models import clients
from auth.purposes import (
    Purpose,
    check_purpose_names,
    read_purposes,
    refuse_unregistered,
    unregistered,
)
from auth.scopes import SCOPES
from auth.webhook_targets import WebhookTargetRefused, WebhookTargets, WebhookTargetUnresolved
from infra.regions import NATIONAL

__all__ = ["NATIONAL", "Client", "ClientRegistry", "check_jurisdiction", "valid_client_id"]

_ID = re.compile(r"[a-z0-9][a-z0-9._:-]{0,127}")
# A GB/T 2260 region prefix: province (2 digits), city (4) or county (6); "*" is national.
_REGION = re.compile(r"[0-9]{2}(?:[0-9]{2}){0,2}")


def valid_client_id(client_id: str) -> bool:
    """Whether the registry could hold this id. Checked before any lookup: an id with a NUL or
    other odd characters is refused by PostgreSQL's driver with an error, not a miss."""
    return _ID.fullmatch(client_id) is not None


@dataclass(frozen=True)
class Client:
    """A registered client. `secret_hash` is an argon2 hash; the secret itself is never kept."""

    client_id: str
    agency: str
    scopes: frozenset[str]
    purposes: frozenset[str]
    enabled: bool
    secret_hash: str | None = None
    public_jwks: Mapping[str, Any] | None = None
    external_issuer: str | None = None
    embargoed_until: date | None = None
    webhook_url: str | None = None
    # The regions whose rows it serves: GB/T 2260 prefixes ("420100", "42") or ("*",), national.
    jurisdiction: tuple[str, ...] = (NATIONAL,)
    # The root fields each of its purposes covers, read with the registration (a purpose the
    # purpose registry does not hold is missing: it covers nothing).
    purpose_operations: Mapping[str, frozenset[str]] = field(default_factory=dict)
    # Those of its purposes whose requests must name the officer acting (`needs_officer`).
    officer_purposes: frozenset[str] = frozenset()

    @property
    def auth_method(self) -> str:
        if self.public_jwks is not None:
            return "private_key_jwt"
        if self.secret_hash is not None:
            return "client_secret"
        return "external"


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


def _joined(words: Iterable[str]) -> str:
    return " ".join(sorted(words))


def _from_row(row: RowMapping, registered: Mapping[str, Purpose]) -> Client:
    jwks = row["public_jwks"]
    own = [registered[p] for p in row["purposes"].split() if p in registered]
    return Client(
        client_id=row["client_id"],
        agency=row["agency"],
        scopes=_words(row["scopes"]),
        purposes=_words(row["purposes"]),
        enabled=bool(row["enabled"]),
        secret_hash=row["secret_hash"],
        public_jwks=json.loads(jwks) if jwks else None,
        external_issuer=row["external_issuer"],
        embargoed_until=row["embargoed_until"],
        webhook_url=row["webhook_url"],
        jurisdiction=tuple(row["jurisdiction"].split()),
        purpose_operations={p.name: p.operations for p in own},
        officer_purposes=frozenset(p.name for p in own if p.needs_officer),
    )


def check_scopes(scopes: Iterable[str]) -> frozenset[str]:
    wanted = frozenset(scopes)
    unknown = wanted - SCOPES
    if unknown:
        raise RegistryError(f"unknown scopes: {' '.join(sorted(unknown))}")
    return wanted


def check_jurisdiction(prefixes: Iterable[str]) -> tuple[str, ...]:
    """The prefixes, sorted and deduplicated, if they make a jurisdiction, else RegistryError."""
    wanted = tuple(sorted(frozenset(prefixes)))
    bad = [p for p in wanted if p != NATIONAL and not _REGION.fullmatch(p)]
    if bad:
        raise RegistryError(
            f"jurisdiction: not a region prefix: {' '.join(bad)} "
            "(each is * or 2, 4 or 6 digits of a GB/T 2260 code, e.g. 420100, 42 or *)"
        )
    if not wanted:
        raise RegistryError("jurisdiction: at least one region prefix (e.g. 420100, 42 or *)")
    if NATIONAL in wanted and len(wanted) > 1:
        raise RegistryError("jurisdiction: * (national) stands alone")
    return wanted


async def _check_webhook_url(targets: WebhookTargets, url: str) -> str:
    """The URL if webhooks may go there (`auth.webhook_targets`), else RegistryError.

    A name that does not resolve yet is accepted: it is checked again before every delivery,
    and an agency's new endpoint may be registered before its DNS record exists.
    """
    try:
        await targets.check(url)
    except WebhookTargetUnresolved:
        pass
    except WebhookTargetRefused as exc:
        raise RegistryError(str(exc)) from None
    return url


def public_key_set(key: Mapping[str, Any]) -> dict[str, Any]:
    """Validate an agency's public key (one JWK or a JWK set) and return it as a JWK set."""
    data = dict(key) if "keys" in key else {"keys": [dict(key)]}
    try:
        key_set = KeySet.import_key_set(data)  # type: ignore[arg-type]
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise RegistryError("public key: not a valid JWK or JWK set") from exc
    if not key_set.keys or any(k.key_type == "oct" or k.is_private for k in key_set.keys):
        raise RegistryError("public key: asymmetric public keys only, never private or oct keys")
    return {"keys": [k.as_dict(private=False) for k in key_set.keys]}


class ClientRegistry:
    """Async CRUD over the clients table; small, so that the CLI can wrap each method."""

    def __init__(
        self,
        engine: AsyncEngine,
        hasher: _passwords.SecretHasher,
        webhook_targets: WebhookTargets | None = None,
    ) -> None:
        self._engine = engine
        self._hasher = hasher
        self._webhook_targets = webhook_targets or WebhookTargets()

    async def add(
        self,
        client_id: str,
        agency: str,
        scopes: Iterable[str],
        purposes: Iterable[str],
        *,
        public_key: Mapping[str, Any] | None = None,
        external_issuer: str | None = None,
        embargoed_until: date | None = None,
        webhook_url: str | None = None,
        jurisdiction: Iterable[str] = (NATIONAL,),
    ) -> tuple[Client, str | None]:
        if not valid_client_id(client_id):
            raise RegistryError("client id: [a-z0-9._:-], at most 128 characters")
        if public_key is not None and external_issuer is not None:
            raise RegistryError("a client has a public key or an external issuer, not both")
        regions = " ".join(check_jurisdiction(jurisdiction))
        jwks = public_key_set(public_key) if public_key is not None else None
        if webhook_url is not None:
            webhook_url = await _check_webhook_url(self._webhook_targets, webhook_url)
        secret = None if jwks or external_issuer else _passwords.new_secret()
        secret_hash = None
        if secret is not None:
            secret_hash = await anyio.to_thread.run_sync(self._hasher.hash, secret)
        now = datetime.now(UTC)
        named = check_purpose_names(purposes)
        values = {
            "client_id": client_id,
            "agency": agency,
            "scopes": _joined(check_scopes(scopes)),
            "purposes": _joined(named),
            "secret_hash": secret_hash,
            "public_jwks": json.dumps(jwks) if jwks else None,
            "external_issuer": external_issuer,
            "enabled": True,
            "embargoed_until": embargoed_until,
            "webhook_url": webhook_url,
            "jurisdiction": regions,
            "created_at": now,
            "updated_at": now,
        }
        try:
            async with self._engine.begin() as conn:
                refuse_unregistered(await unregistered(conn, named))
                await conn.execute(insert(clients).values(**values))
        except IntegrityError:
            raise RegistryError(f"client {client_id!r} already exists") from None
        return await self.get(client_id), secret

    async def find(self, client_id: str) -> Client | None:
        if not valid_client_id(client_id):
            return None
        async with self._engine.connect() as conn:
            result = await conn.execute(select(clients).where(clients.c.client_id == client_id))
            row = result.mappings().first()
            if row is None:
                return None
            registered = await read_purposes(conn, row["purposes"].split())
        return _from_row(row, registered)

    async def get(self, client_id: str) -> Client:
        client = await self.find(client_id)
        if client is None:
            raise UnknownClient(f"no client {client_id!r}")
        return client

    async def list(self) -> list[Client]:
        async with self._engine.connect() as conn:
            result = await conn.execute(select(clients).order_by(clients.c.client_id))
            rows = list(result.mappings())
            registered = await read_purposes(
                conn, {p for row in rows for p in row["purposes"].split()}
            )
        return [_from_row(row, registered) for row in rows]

    async def update(self, client_id: str, **values: Any) -> Client:
        values["updated_at"] = datetime.now(UTC)
        async with self._engine.begin() as conn:
            if "purposes" in values:  # in the transaction that writes them
                refuse_unregistered(await unregistered(conn, str(values["purposes"]).split()))
            result = await conn.execute(
                update(clients).where(clients.c.client_id == client_id).values(**values)
            )
        if result.rowcount == 0:
            raise UnknownClient(f"no client {client_id!r}")
        return await self.get(client_id)

    async def set_scopes(self, client_id: str, scopes: Iterable[str]) -> Client:
        return await self.update(client_id, scopes=_joined(check_scopes(scopes)))

    async def set_purposes(self, client_id: str, purposes: Iterable[str]) -> Client:
        return await self.update(client_id, purposes=_joined(check_purpose_names(purposes)))

    async def set_jurisdiction(self, client_id: str, prefixes: Iterable[str]) -> Client:
        return await self.update(client_id, jurisdiction=" ".join(check_jurisdiction(prefixes)))

    async def set_enabled(self, client_id: str, enabled: bool) -> Client:
        return await self.update(client_id, enabled=enabled)
