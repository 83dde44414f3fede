"""The denylist every hub instance shares: revoked tokens and disabled clients.

The hub database is the record: a revoked token is a row of `auth_revocations` (a hash of its
issuer and jti, and when it expires), a disabled client is `enabled = false` in the client
registry. Each instance holds a replica in memory, fed by the shared-state stream
(`infra.shared_state`): loaded from the database at start (and whenever the replica cannot
know what it missed), then kept current by the stream's entries. A check is a set lookup, with
no round trip to Redis.

Writes go to the database first, then to this instance's replica, then to the stream. Once the
database holds a revocation it is done: an entry the stream did not take is appended once Redis
answers again.

Checks FAIL CLOSED: when the replica is staler than `max_staleness` (Redis has not answered a
read of the stream for that long, or the database could not reload it), the request is refused
with `Unavailable` (503, retry), never let through. Entries and rows carry hashes of (issuer,
jti), never a token.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import math
from collections.abc import Callable, Mapping

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from auth.errors import Unauthenticated, Unavailable
from auth.models import clients, revocations
from infra.shared_state import SharedState

__all__ = ["DATABASE_ERRORS", "Denylist"]

log = logging.getLogger("auth.revocation")

#: What a database that is down, restarting or out of connections raises (driver, pool, socket).
DATABASE_ERRORS = (SQLAlchemyError, OSError, TimeoutError)

REVOKED = "token-revoked"
CLIENT = "client-disabled"
_PRUNE_EVERY = 1000  # revocations applied between two sweeps of the expired ones


def _digest(issuer: str, jti: str) -> str:
    return hashlib.sha256(f"{issuer}\n{jti}".encode()).hexdigest()[:40]


def _utc(epoch: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, dt.UTC)


def _epoch(moment: dt.datetime) -> float:
    # SQLite hands back naive datetimes; they were written in UTC.
    return (moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)).timestamp()


class Denylist:
    """This instance's replica of the denylist; `shared` feeds it and says how fresh it is."""

    def __init__(
        self,
        shared: SharedState,
        engine: AsyncEngine,
        leeway_seconds: float,
        clock: Callable[[], float],
    ) -> None:
        self._shared = shared
        self._engine = engine
        self._leeway = leeway_seconds
        self._clock = clock
        self._revoked: dict[str, float] = {}  # digest -> until when it matters (epoch seconds)
        self._disabled: set[str] = set()
        self._loaded = False
        self._added = 0
        shared.on(REVOKED, self._on_revoked)
        shared.on(CLIENT, self._on_client)
        shared.on_reset(self.reload)

    # -- writes: the database, this replica, then the stream ------------------------------------

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
        self._add(digest, until)
        fields = {"token": digest.encode(), "until": b"%d" % math.ceil(until)}
        await self._shared.publish(REVOKED, fields)

    async def set_client_disabled(self, client_id: str, disabled: bool) -> None:
        """A registry change the caller has already written, here and on every instance."""
        self._set_client(client_id, disabled)
        fields = {"client": client_id.encode(), "disabled": b"1" if disabled else b"0"}
        await self._shared.publish(CLIENT, fields)

    def _add(self, digest: str, until: float) -> None:
        self._revoked[digest] = max(until, self._revoked.get(digest, 0.0))
        self._added += 1
        if self._added % _PRUNE_EVERY == 0:
            now = self._clock()
            self._revoked = {d: u for d, u in self._revoked.items() if u > now}

    def _set_client(self, client_id: str, disabled: bool) -> None:
        if disabled:
            self._disabled.add(client_id)
        else:
            self._disabled.discard(client_id)

    def _on_revoked(self, fields: Mapping[str, bytes]) -> None:
        self._add(fields["token"].decode(), float(fields["until"]))

    def _on_client(self, fields: Mapping[str, bytes]) -> None:
        self._set_client(fields["client"].decode(), fields["disabled"] == b"1")

    # -- checks ----------------------------------------------------------------------------------

    def check(self, issuer: str, jti: str, client_id: str) -> None:
        """Raises if the token is revoked or its client disabled, or if the replica is too
        stale to say (`Unavailable`)."""
        if not self._loaded or not self._shared.fresh():
            raise Unavailable("revocation status unavailable")
        until = self._revoked.get(_digest(issuer, jti))
        if until is not None and until > self._clock():
            raise Unauthenticated("token revoked", client_id=client_id, reason="TOKEN_REVOKED")
        if client_id in self._disabled:
            raise Unauthenticated("client disabled", client_id=client_id, reason="CLIENT_DISABLED")

    # -- rebuilding the replica --------------------------------------------------------------------

    async def reload(self) -> None:
        """Every live revocation and every disabled client, from the database.

        Raises `Unavailable` if the database does not answer (the replica keeps what it had,
        and the stream's reader tries again).
        """
        now = self._clock()
        try:
            async with self._engine.connect() as conn:
                revoked = (await conn.execute(
                    select(revocations.c.token_key, revocations.c.expires_at)
                    .where(revocations.c.expires_at > _utc(now))
                )).all()
                disabled = (await conn.execute(
                    select(clients.c.client_id).where(clients.c.enabled.is_(False))
                )).scalars().all()
        except DATABASE_ERRORS as exc:
            log.warning("denylist not reloaded: hub database unavailable (%s)",
                        type(exc).__name__)
            raise Unavailable("revocation status unavailable") from None
        self._revoked = {digest: _epoch(until) for digest, until in revoked}
        self._disabled = set(disabled)
        self._loaded = True
        log.info("denylist reloaded from the hub database: %d revocations, %d disabled clients",
                 len(self._revoked), len(self._disabled))
