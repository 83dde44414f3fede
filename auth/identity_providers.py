"""The identity providers whose assertions each client may exchange for tokens (`auth.exchange`).

A registration binds one issuer to one client: the client's officers (kind `officer`) or the
persons it serves (kind `subject`, e.g. foreigners verified by the e-SSC app's real-name check)
are asserted by that issuer, signed with keys from its JWKS URL or from a JWK set registered
here, and each role the issuer asserts opens some hub scopes. An issuer registered for one client
is not trusted for another. Person scopes (`self:*`) come only from a subject provider, and a
subject provider opens nothing else: a foreigner's token can never carry an agency's scopes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Literal

from authlib.common.security import is_secure_transport
from sqlalchemy import delete, insert, select
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from auth.clients import ClientRegistry, check_scopes, public_key_set
from auth.errors import RegistryError
from auth.models import identity_providers
from auth.scopes import PERSON_SCOPES

__all__ = [
    "IdentityProvider",
    "IdentityProviderRegistry",
    "ProviderKind",
    "parse_roles",
]

ProviderKind = Literal["officer", "subject"]
_KINDS: tuple[ProviderKind, ...] = ("officer", "subject")
_ROLE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
_MAX_URL = 512
# A fetched JWKS is cached this long (and fetched again at once for an unknown kid).
_JWKS_CACHE_SECONDS = 300.0


@dataclass(frozen=True)
class IdentityProvider:
    client_id: str
    issuer: str
    kind: ProviderKind
    roles: Mapping[str, frozenset[str]]
    jwks_url: str | None = None
    jwks: Mapping[str, Any] | None = None
    jwks_cache_seconds: float = _JWKS_CACHE_SECONDS

    def scopes_of(self, roles: Iterable[str]) -> frozenset[str]:
        """The hub scopes the asserted `roles` open (roles not registered open nothing)."""
        return frozenset().union(*(self.roles.get(role, frozenset()) for role in roles))


def parse_roles(text: str) -> dict[str, frozenset[str]]:
    """`"officer=permit:validity,permit:holder clerk=enrollment:read"` as a role mapping."""
    roles: dict[str, frozenset[str]] = {}
    for item in text.split():
        role, equals, scopes = item.partition("=")
        if not equals or role in roles:
            raise RegistryError(f"roles: {item!r} is not role=scope,scope (each role once)")
        roles[role] = frozenset(s for s in scopes.split(",") if s)
    return roles


def _check_roles(kind: ProviderKind, roles: Mapping[str, Iterable[str]]) -> dict[str, list[str]]:
    checked: dict[str, list[str]] = {}
    for role, scopes in roles.items():
        if not _ROLE.fullmatch(role):
            raise RegistryError(f"roles: {role!r} is not a role name ([A-Za-z0-9._:-], 64 at most)")
        wanted = check_scopes(scopes)
        if not wanted:
            raise RegistryError(f"roles: {role} opens no scope")
        if kind == "subject" and not wanted <= PERSON_SCOPES:
            others = " ".join(sorted(wanted - PERSON_SCOPES))
            raise RegistryError(
                f"roles: a subject provider opens person scopes only "
                f"({' '.join(sorted(PERSON_SCOPES))}), not {others}"
            )
        if kind == "officer" and wanted & PERSON_SCOPES:
            raise RegistryError("roles: person scopes (self:*) come only from a subject provider")
        checked[role] = sorted(wanted)
    if not checked:
        raise RegistryError("roles: at least one role=scope,... mapping")
    return checked


def _check_url(url: str, what: str) -> str:
    if len(url) > _MAX_URL or not is_secure_transport(url):
        raise RegistryError(f"{what}: an https URL (http only on a loopback address)")
    return url


def _from_row(row: RowMapping) -> IdentityProvider:
    roles = {role: frozenset(scopes) for role, scopes in json.loads(row["roles"]).items()}
    return IdentityProvider(
        client_id=row["client_id"],
        issuer=row["issuer"],
        kind=row["kind"],
        roles=MappingProxyType(roles),
        jwks_url=row["jwks_url"],
        jwks=json.loads(row["jwks"]) if row["jwks"] else None,
    )


class IdentityProviderRegistry:
    def __init__(self, engine: AsyncEngine, clients: ClientRegistry, hub_issuer: str) -> None:
        self._engine = engine
        self._clients = clients
        self._hub_issuer = hub_issuer

    async def add(
        self,
        client_id: str,
        issuer: str,
        kind: str,
        roles: Mapping[str, Iterable[str]],
        *,
        jwks_url: str | None = None,
        jwks: Mapping[str, Any] | None = None,
    ) -> IdentityProvider:
        client = await self._clients.get(client_id)
        if client.external_issuer is not None:
            raise RegistryError(f"client {client_id!r} takes tokens from its IdP: no exchange")
        if kind not in _KINDS:
            raise RegistryError("kind: officer or subject")
        if _check_url(issuer, "issuer") == self._hub_issuer:
            raise RegistryError("issuer: the hub's own tokens are never subject tokens")
        if (jwks_url is None) == (jwks is None):
            raise RegistryError("keys: a JWKS URL or a JWK set file, exactly one")
        values = {
            "client_id": client_id,
            "issuer": issuer,
            "kind": kind,
            "jwks_url": _check_url(jwks_url, "jwks url") if jwks_url is not None else None,
            "jwks": json.dumps(public_key_set(jwks)) if jwks is not None else None,
            "roles": json.dumps(_check_roles(kind, roles), sort_keys=True),
            "created_at": datetime.now(UTC),
        }
        try:
            async with self._engine.begin() as conn:
                await conn.execute(insert(identity_providers).values(**values))
        except IntegrityError:
            raise RegistryError(f"{client_id} already trusts {issuer}") from None
        found = await self.find(client_id, issuer)
        assert found is not None
        return found

    async def remove(self, client_id: str, issuer: str) -> bool:
        async with self._engine.begin() as conn:
            result = await conn.execute(
                delete(identity_providers).where(
                    identity_providers.c.client_id == client_id,
                    identity_providers.c.issuer == issuer,
                )
            )
        return bool(result.rowcount)

    async def find(self, client_id: str, issuer: str) -> IdentityProvider | None:
        async with self._engine.connect() as conn:
            result = await conn.execute(
                select(identity_providers).where(
                    identity_providers.c.client_id == client_id,
                    identity_providers.c.issuer == issuer,
                )
            )
            row = result.mappings().first()
        return _from_row(row) if row is not None else None

    async def trusted_elsewhere(self, issuer: str) -> bool:
        """Whether some client trusts `issuer` (to tell "another client's IdP" apart)."""
        async with self._engine.connect() as conn:
            result = await conn.execute(
                select(identity_providers.c.client_id)
                .where(identity_providers.c.issuer == issuer)
                .limit(1)
            )
            return result.first() is not None

    async def has_any(self, client_id: str) -> bool:
        async with self._engine.connect() as conn:
            result = await conn.execute(
                select(identity_providers.c.issuer)
                .where(identity_providers.c.client_id == client_id)
                .limit(1)
            )
            return result.first() is not None

    async def list(self, client_id: str | None = None) -> list[IdentityProvider]:
        query = select(identity_providers).order_by(
            identity_providers.c.client_id, identity_providers.c.issuer
        )
        if client_id is not None:
            query = query.where(identity_providers.c.client_id == client_id)
        async with self._engine.connect() as conn:
            return [_from_row(row) for row in (await conn.execute(query)).mappings()]
