"""The denylist every hub instance shares: revoked tokens and disabled clients.

The hub database is the record: a revoked token is a row of `auth_revocations` (a hash of its
issuer and jti, and when it expires), a disabled client is `enabled = false` in the client
registry. The shared key-value store (Redis) holds a copy for the hot path, where one round
trip reads a request's two entries and the sentinel `auth:denylist-loaded`, which a reload
from the database writes after the entries. A store that restarted without its data, or was
flushed, has no sentinel: a request that finds it missing is not judged until this instance
has rebuilt the copy from the database (one reload at a time per instance; instances that
reload together write the same entries).

Writes go to the database first, then to the store. Once the database holds a revocation it
is done: if the store could not be written, this instance rewrites the whole copy as soon as
the store answers again (and a store that lost its data is rebuilt by whichever instance
notices first). Expired rows are pruned when a token is revoked.

Checks FAIL CLOSED: when the store or the database cannot answer, the request is refused with
`Unavailable` (503, retry), never let through. Keys and rows carry hashes of (issuer, jti),
never a token.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
import math
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from auth.errors import Unauthenticated, Unavailable
from auth.models import clients, revocations
from infra.kv import KeyValue, KeyValueUnavailable

__all__ = ["DATABASE_ERRORS", "Denylist"]

log = logging.getLogger("auth.revocation")

#: What a database that is down, restarting or out of connections raises (driver, pool, socket).
DATABASE_ERRORS = (SQLAlchemyError, OSError, TimeoutError)

SENTINEL = "auth:denylist-loaded"
_MIN_TTL = 1.0
_TTL_STEP = 60  # reloaded entries are grouped by TTL rounded up to this, one write per group
_RESYNC_SECONDS = 1.0


def _digest(issuer: str, jti: str) -> str:
    return hashlib.sha256(f"{issuer}\n{jti}".encode()).hexdigest()[:40]


def _token_key(digest: str) -> str:
    return f"auth:revoked:{digest}"


def _client_key(client_id: str) -> str:
    return f"auth:client-disabled:{client_id}"


def _utc(epoch: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, dt.UTC)


def _epoch(moment: dt.datetime) -> float:
    # SQLite hands back naive datetimes; they were written in UTC.
    return (moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)).timestamp()


class Denylist:
    def __init__(
        self,
        kv: KeyValue,
        engine: AsyncEngine,
        leeway_seconds: float,
        clock: Callable[[], float],
    ) -> None:
        self._kv = kv
        self._engine = engine
        self._leeway = leeway_seconds
        self._clock = clock
        self._reloading = asyncio.Lock()
        self._reloads = 0  # completed reloads; a caller that waited for one need not repeat it
        self._resync: asyncio.Task[None] | None = None

    # -- writes: the database, then the store ---------------------------------------------------

    async def revoke(self, issuer: str, jti: str, expires_at: float) -> None:
        """Raises `Unavailable` if the database did not record it: it must not look done."""
        digest, now = _digest(issuer, jti), self._clock()
        until = expires_at + self._leeway  # a token is accepted up to `leeway` after its exp
        row = {"token_key": digest, "expires_at": _utc(until), "revoked_at": _utc(now)}
        dialect = postgresql if self._engine.dialect.name == "postgresql" else sqlite
        try:
            async with self._engine.begin() as conn:
                expired = revocations.c.expires_at < _utc(now)
                await conn.execute(delete(revocations).where(expired))
                insert = dialect.insert(revocations).values(**row)
                await conn.execute(insert.on_conflict_do_nothing())
        except DATABASE_ERRORS as exc:
            log.warning("revocation not recorded: hub database unavailable (%s)",
                        type(exc).__name__)
            raise Unavailable("revocation not recorded") from None
        ttl = max(_MIN_TTL, until - now)
        await self._copy(self._kv.set(_token_key(digest), b"1", ttl_seconds=ttl))

    async def set_client_disabled(self, client_id: str, disabled: bool) -> None:
        """The store's copy of a registry change the caller has already written."""
        key = _client_key(client_id)
        await self._copy(self._kv.set(key, b"1") if disabled else self._kv.delete(key))

    async def _copy(self, write: Any) -> None:
        try:
            await write
        except KeyValueUnavailable as exc:
            log.warning("denylist copy not written (%s); rewriting it when the store answers", exc)
            self._resync_soon()

    def _resync_soon(self) -> None:
        if self._resync is None or self._resync.done():
            self._resync = asyncio.get_running_loop().create_task(self._resync_when_reachable())

    async def _resync_when_reachable(self) -> None:
        while True:
            await asyncio.sleep(_RESYNC_SECONDS)
            try:
                await self.reload(force=True)
            except Unavailable:
                continue
            return

    async def close(self) -> None:
        if self._resync is not None:
            self._resync.cancel()
            await asyncio.gather(self._resync, return_exceptions=True)

    # -- checks ----------------------------------------------------------------------------------

    @staticmethod
    def keys(issuer: str, jti: str, client_id: str) -> list[str]:
        """The entries `check` reads, for a caller that reads them with other keys at once."""
        return [_token_key(_digest(issuer, jti)), _client_key(client_id), SENTINEL]

    async def check(self, issuer: str, jti: str, client_id: str) -> None:
        """One round trip for both questions; refuses when either is denied or unknown."""
        keys = self.keys(issuer, jti, client_id)
        try:
            values = await self._kv.get_many(keys)
        except KeyValueUnavailable as exc:
            log.warning("shared store unavailable (%s); revocation unknown, refused", exc)
            raise Unavailable("revocation status unavailable") from None
        await self.judge(values, issuer, jti, client_id)

    async def judge(
        self, values: Sequence[bytes | None], issuer: str, jti: str, client_id: str
    ) -> None:
        """Raises if the entries read for `keys` deny the token, or cannot be trusted.

        Without the sentinel the store has lost its copy: it is rebuilt from the database, then
        the entries are read again (twice at most; then the store is reported unavailable).
        """
        for _ in range(2):
            revoked, disabled, loaded = values
            if loaded is not None:
                if revoked is not None:
                    raise Unauthenticated(
                        "token revoked", client_id=client_id, reason="TOKEN_REVOKED"
                    )
                if disabled is not None:
                    raise Unauthenticated(
                        "client disabled", client_id=client_id, reason="CLIENT_DISABLED"
                    )
                return
            await self.reload()
            try:
                values = await self._kv.get_many(self.keys(issuer, jti, client_id))
            except KeyValueUnavailable:
                break
        raise Unavailable("revocation status unavailable")

    # -- rebuilding the store's copy ---------------------------------------------------------------

    async def reload(self, *, force: bool = False) -> None:
        """Write every live revocation and every client's state to the store, then the sentinel.

        Raises `Unavailable` if the database or the store does not answer. Callers that find
        a reload running wait for it instead of starting another.
        """
        seen = self._reloads
        async with self._reloading:
            if self._reloads != seen and not force:
                return
            now = self._clock()
            try:
                async with self._engine.connect() as conn:
                    revoked = (await conn.execute(
                        select(revocations.c.token_key, revocations.c.expires_at)
                        .where(revocations.c.expires_at > _utc(now))
                    )).all()
                    states = (await conn.execute(select(clients.c.client_id, clients.c.enabled)))
                    registry = states.all()
            except DATABASE_ERRORS as exc:
                log.warning("denylist not reloaded: hub database unavailable (%s)",
                            type(exc).__name__)
                raise Unavailable("revocation status unavailable") from None
            try:
                await self._write(revoked, registry, now)
            except KeyValueUnavailable as exc:
                log.warning("denylist not reloaded: shared store unavailable (%s)", exc)
                raise Unavailable("revocation status unavailable") from None
            self._reloads += 1
            disabled = sum(1 for _, enabled in registry if not enabled)
            log.info("denylist reloaded from the hub database: %d revocations, %d disabled clients",
                     len(revoked), disabled)

    async def _write(
        self, revoked: Sequence[Any], registry: Sequence[Any], now: float
    ) -> None:
        """The entries first, the sentinel last: a reader that sees it sees them."""
        groups: dict[int, dict[str, bytes]] = {}
        for digest, expires_at in revoked:
            ttl = max(_TTL_STEP, math.ceil((_epoch(expires_at) - now) / _TTL_STEP) * _TTL_STEP)
            groups.setdefault(ttl, {})[_token_key(digest)] = b"1"
        writes = [self._kv.set_many(items, ttl) for ttl, items in groups.items()]
        writes += [self._kv.set(_client_key(c), b"1") for c, enabled in registry if not enabled]
        enabled = [_client_key(c) for c, enabled in registry if enabled]
        if enabled:
            writes.append(self._kv.delete(*enabled))
        await asyncio.gather(*writes)
        await self._kv.set(SENTINEL, b"%d" % int(now))
