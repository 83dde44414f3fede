"""The purpose registry: each purpose of use names the operations a request made for it may run.

A purpose is registered once (`hub purposes add`), with the GraphQL root fields (queries,
mutations, subscriptions) it covers; clients are registered for purposes by name, and only for
registered ones (`hub clients add --purposes`). A request names its purpose in
`X-Purpose-Of-Use` (`auth.purpose`) and may run only the root fields that purpose covers (the
hub checks the document: `schema.purposes`). A purpose covering nothing refuses every request:
deny by default.

The operations of a client's purposes are read with its registration (`read_operations`, called
by the client registry), so a change reaches tokens already issued as soon as the client's
registration is read again, like a change of its scopes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from auth.errors import RegistryError, UnknownPurpose
from auth.models import purposes

__all__ = [
    "Purpose", "PurposeRegistry", "check_purpose_names", "read_operations", "read_purposes",
]

_NAME = re.compile(r"[a-z0-9][a-z0-9._:-]{0,63}")
_OPERATION = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,127}")


@dataclass(frozen=True)
class Purpose:
    """A registered purpose: the root fields it covers, and whether its requests must name the
    officer acting (an officer's exchanged token and the case, `X-Case-Reference`)."""

    name: str
    operations: frozenset[str]
    needs_officer: bool = False


def check_purpose_names(names: Iterable[str]) -> frozenset[str]:
    """The names if each could be a purpose's, at least one; else RegistryError."""
    wanted = frozenset(names)
    bad = [p for p in wanted if not _NAME.fullmatch(p)]
    if bad or not wanted:
        raise RegistryError("purposes: at least one, each [a-z0-9._:-], at most 64 characters")
    return wanted


def _joined(words: Iterable[str]) -> str:
    return " ".join(sorted(words))


def _purpose(row: RowMapping) -> Purpose:
    return Purpose(
        name=str(row["name"]),
        operations=frozenset(str(row["operations"]).split()),
        needs_officer=bool(row["needs_officer"]),
    )


async def read_operations(
    conn: AsyncConnection, names: Iterable[str]
) -> dict[str, frozenset[str]]:
    """The operations of each of `names` that is registered (an unregistered one is missing,
    and so covers nothing)."""
    return {name: p.operations for name, p in (await read_purposes(conn, names)).items()}


async def read_purposes(conn: AsyncConnection, names: Iterable[str]) -> dict[str, Purpose]:
    """Each of `names` that is registered (an unregistered one is missing)."""
    wanted = sorted(set(names))
    if not wanted:
        return {}
    result = await conn.execute(select(purposes).where(purposes.c.name.in_(wanted)))
    return {str(row["name"]): _purpose(row) for row in result.mappings()}


async def unregistered(conn: AsyncConnection, names: Iterable[str]) -> list[str]:
    """Those of `names` the registry does not hold, sorted."""
    wanted = set(names)
    known = await read_operations(conn, wanted)
    return sorted(wanted - known.keys())


def refuse_unregistered(missing: list[str]) -> None:
    if missing:
        raise RegistryError(
            f"purposes not registered: {' '.join(missing)} "
            "(register each first: hub purposes add NAME --operations ...)"
        )


class PurposeRegistry:
    """Async CRUD over the purposes table.

    `known_operations`: the root fields a purpose may name (the hub gives its schema's); an
    operation outside them is refused, so that a typo cannot register a purpose that covers
    nothing it meant to. Empty: any well-formed name (for an auth service without a schema).
    """

    def __init__(self, engine: AsyncEngine, known_operations: frozenset[str]) -> None:
        self._engine = engine
        self._known = known_operations

    def check_operations(self, operations: Iterable[str]) -> frozenset[str]:
        wanted = frozenset(operations)
        bad = sorted(o for o in wanted if not _OPERATION.fullmatch(o))
        if not bad and self._known:
            bad = sorted(wanted - self._known)
        if bad:
            known = f" (root fields: {' '.join(sorted(self._known))})" if self._known else ""
            raise RegistryError(f"unknown operations: {' '.join(bad)}{known}")
        return wanted

    async def add(
        self, name: str, operations: Iterable[str], *, needs_officer: bool = False
    ) -> Purpose:
        (checked,) = check_purpose_names([name])
        now = datetime.now(UTC)
        values = {
            "name": checked,
            "operations": _joined(self.check_operations(operations)),
            "needs_officer": needs_officer,
            "created_at": now,
            "updated_at": now,
        }
        try:
            async with self._engine.begin() as conn:
                await conn.execute(insert(purposes).values(**values))
        except IntegrityError:
            raise RegistryError(f"purpose {name!r} already exists") from None
        return await self.get(checked)

    async def set_operations(self, name: str, operations: Iterable[str]) -> Purpose:
        values = {
            "operations": _joined(self.check_operations(operations)),
            "updated_at": datetime.now(UTC),
        }
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(purposes).where(purposes.c.name == name).values(**values)
            )
        if result.rowcount == 0:
            raise UnknownPurpose(f"no purpose {name!r}")
        return await self.get(name)

    async def get(self, name: str) -> Purpose:
        async with self._engine.connect() as conn:
            result = await conn.execute(select(purposes).where(purposes.c.name == name))
            row = result.mappings().first()
        if row is None:
            raise UnknownPurpose(f"no purpose {name!r}")
        return _purpose(row)

    async def list(self) -> list[Purpose]:
        async with self._engine.connect() as conn:
            result = await conn.execute(select(purposes).order_by(purposes.c.name))
            return [_purpose(row) for row in result.mappings()]
