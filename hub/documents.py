"""Trusted documents: per-client allow-lists of GraphQL documents, known by their SHA-256.

An agency registers the documents its software sends (`hub documents add --client ID
FILE.graphql`); a request may then name one instead of sending it, as `documentId`
("sha256:<hex>" or "<hex>") or with the persisted-query extension
(`extensions.persistedQuery.sha256Hash`, version 1, as Apollo clients send it).

With `HUB_TRUSTED_DOCUMENTS=enforce`, a client may run only its registered documents: anything
else is refused with FORBIDDEN before it is parsed, so an attacker holding a stolen token can
replay the agency's own queries but cannot explore the schema or craft a costly one. With
`allow` (the default) registered documents may be named by id and other documents still run.

Documents are never registered implicitly (no automatic persisted queries): the list is the
deployment's decision, made with the CLI, and every change to it is in the audit log.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Literal

from graphql import GraphQLSyntaxError, parse
from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from hub.tables import trusted_documents

__all__ = [
    "DocumentRefused",
    "StoredDocument",
    "TrustMode",
    "TrustedDocuments",
    "document_id_of",
]

TrustMode = Literal["allow", "enforce"]
_HEX = re.compile(r"[0-9a-f]{64}")
_CACHE_SIZE = 10_000


class DocumentRefused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass(frozen=True, slots=True)
class StoredDocument:
    document_id: str
    name: str | None
    created_at: dt.datetime


def document_id_of(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _requested_id(payload: dict[str, Any]) -> str | None:
    """The document id a request names, normalised; BAD_USER_INPUT if it names one badly."""
    named = payload.get("documentId")
    extensions = payload.get("extensions")
    persisted = extensions.get("persistedQuery") if isinstance(extensions, dict) else None
    if named is None and persisted is None:
        return None
    if named is not None and persisted is not None:
        raise DocumentRefused(400, "BAD_USER_INPUT", "send documentId or persistedQuery, not both")
    if persisted is not None:
        if not isinstance(persisted, dict) or persisted.get("version") != 1:
            raise DocumentRefused(400, "BAD_USER_INPUT", "persistedQuery must be version 1")
        named = persisted.get("sha256Hash")
    if not isinstance(named, str):
        raise DocumentRefused(400, "BAD_USER_INPUT", "the document id must be a string")
    value = named.removeprefix("sha256:").lower()
    if not _HEX.fullmatch(value):
        raise DocumentRefused(400, "BAD_USER_INPUT", "the document id must be a SHA-256 in hex")
    return value


class TrustedDocuments:
    def __init__(self, engine: AsyncEngine, mode: TrustMode, cache_seconds: float = 60.0) -> None:
        self._engine = engine
        self.mode = mode
        self._ttl = cache_seconds
        # (client, id) -> (text, fetched at). Only hits are kept: a removal takes effect
        # within `cache_seconds` on every instance.
        self._cache: OrderedDict[tuple[str, str], tuple[str, float]] = OrderedDict()

    async def resolve(self, client_id: str, payload: dict[str, Any]) -> str | None:
        """The document text to run for this request, or None to let the caller complain."""
        query = payload.get("query")
        query = query if isinstance(query, str) and query else None
        wanted = _requested_id(payload)
        if wanted is None:
            if query is None or self.mode == "allow":
                return query
            wanted = document_id_of(query)
            if await self.lookup(client_id, wanted) is None:
                raise DocumentRefused(
                    403, "FORBIDDEN", "this document is not on the client's trusted list"
                )
            return query
        if query is not None and document_id_of(query) != wanted:
            raise DocumentRefused(400, "BAD_USER_INPUT", "the query does not match its id")
        text = await self.lookup(client_id, wanted)
        if text is None:
            raise DocumentRefused(
                400, "BAD_USER_INPUT", "no trusted document of this client has this id"
            )
        return text

    async def lookup(self, client_id: str, document_id: str) -> str | None:
        key = (client_id, document_id)
        cached = self._cache.get(key)
        if cached is not None and time.monotonic() - cached[1] < self._ttl:
            return cached[0]
        table = trusted_documents
        async with self._engine.connect() as conn:
            text = await conn.scalar(
                select(table.c.document).where(
                    table.c.client_id == client_id, table.c.document_id == document_id
                )
            )
        if text is None:
            self._cache.pop(key, None)
            return None
        self._cache[key] = (text, time.monotonic())
        self._cache.move_to_end(key)
        while len(self._cache) > _CACHE_SIZE:
            self._cache.popitem(last=False)
        return str(text)

    async def add(self, client_id: str, text: str, name: str | None = None) -> str:
        """Register `text` for the client (again: a no-op); its id. ValueError if not GraphQL."""
        try:
            parse(text)
        except GraphQLSyntaxError as exc:
            raise ValueError(f"not a GraphQL document: {exc.message}") from None
        document_id = document_id_of(text)
        row = {
            "client_id": client_id,
            "document_id": document_id,
            "document": text,
            "name": name,
            "created_at": dt.datetime.now(dt.UTC),
        }
        insert = (
            postgresql.insert(trusted_documents)
            if self._engine.dialect.name == "postgresql"
            else sqlite.insert(trusted_documents)
        )
        async with self._engine.begin() as conn:
            await conn.execute(insert.values(**row).on_conflict_do_nothing())
        return document_id

    async def remove(self, client_id: str, document_id: str) -> bool:
        table = trusted_documents
        async with self._engine.begin() as conn:
            result = await conn.execute(
                delete(table).where(
                    table.c.client_id == client_id,
                    table.c.document_id == document_id.removeprefix("sha256:"),
                )
            )
        self._cache.pop((client_id, document_id), None)
        return bool(result.rowcount)

    async def list(self, client_id: str) -> list[StoredDocument]:
        table = trusted_documents
        async with self._engine.connect() as conn:
            rows = await conn.execute(
                select(table.c.document_id, table.c.name, table.c.created_at)
                .where(table.c.client_id == client_id)
                .order_by(table.c.created_at)
            )
            return [StoredDocument(r.document_id, r.name, r.created_at) for r in rows]
