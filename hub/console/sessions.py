"""Console sessions: a random id in a cookie, everything else in the shared key-value store.

The cookie holds only the session id (256 random bits); the store holds, under the id's SHA-256,
the signed-in client, the access token the sign-in obtained and the session's CSRF token, so any
hub instance sharing the store serves the session and a leaked store dump names no usable
cookie. The page never sees the client secret nor the token. Each page view renews the idle
lifetime; the token's own expiry (and the revocation judge on every page) bounds it further.

Filters are kept here too ("views"): a filter form is POSTed, stored under a short random id
bound to the session, and the pages' URLs carry only that id, so no identity number is ever in
a URL (access logs, browser history, Referer).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import asdict, dataclass
from typing import Any

import orjson

from infra.kv import KeyValue

__all__ = ["COOKIE", "IDLE_SECONDS", "ConsoleSession", "SessionStore"]

COOKIE = "hub_console"
#: Seconds of inactivity after which a session ends (the token's expiry may end it sooner).
IDLE_SECONDS = 600


@dataclass(frozen=True)
class ConsoleSession:
    key: str  # the SHA-256 of the cookie's id: what the store is keyed by
    client_id: str
    agency: str | None
    token: str
    csrf: str


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8", "replace")).hexdigest()


class SessionStore:
    def __init__(self, kv: KeyValue, idle_seconds: float = IDLE_SECONDS) -> None:
        self._kv = kv
        self._idle = idle_seconds

    async def create(
        self, client_id: str, agency: str | None, token: str
    ) -> tuple[str, ConsoleSession]:
        """A new session; returns the id for the cookie, and the session."""
        session_id = secrets.token_urlsafe(32)
        session = ConsoleSession(
            _digest(session_id), client_id, agency, token, secrets.token_urlsafe(32)
        )
        await self._kv.set(self._session_key(session.key), orjson.dumps(asdict(session)),
                           ttl_seconds=self._idle)
        return session_id, session

    async def find(self, session_id: str) -> ConsoleSession | None:
        """The live session with this id, its idle lifetime renewed; None if none."""
        if not 20 <= len(session_id) <= 100:
            return None
        key = self._session_key(_digest(session_id))
        raw = await self._kv.get(key)
        if raw is None:
            return None
        await self._kv.set(key, raw, ttl_seconds=self._idle)
        return ConsoleSession(**orjson.loads(raw))

    async def end(self, session: ConsoleSession) -> None:
        await self._kv.delete(self._session_key(session.key))

    async def keep_view(self, session: ConsoleSession, view: dict[str, Any]) -> str:
        """Store a filter for this session; returns its id for the page URLs."""
        view_id = secrets.token_urlsafe(9)
        await self._kv.set(self._view_key(session, view_id), orjson.dumps(view),
                           ttl_seconds=self._idle)
        return view_id

    async def view(self, session: ConsoleSession, view_id: str) -> dict[str, Any] | None:
        if not 1 <= len(view_id) <= 40:
            return None
        raw = await self._kv.get(self._view_key(session, view_id))
        if raw is None:
            return None
        found: Any = orjson.loads(raw)
        return found if isinstance(found, dict) else None

    @staticmethod
    def _session_key(key: str) -> str:
        return f"console:session:{key}"

    @staticmethod
    def _view_key(session: ConsoleSession, view_id: str) -> str:
        return f"console:view:{session.key}:{view_id}"
