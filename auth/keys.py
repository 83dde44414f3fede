"""The hub's signing keys: generation, rotation, publication (JWKS) and lookup by kid.

Timeline of one key: created and published at `created_at`; signs from `activates_at`
(published before it signs, so that verifiers caching our JWKS already know it); stops signing
at `retired_at` (when its successor activates); leaves the JWKS at `expires_from_jwks_at`,
after the last token it signed has expired. Every hub instance reads the same table and
refreshes its in-memory ring every `key_refresh_seconds` (and at once on an unknown kid, at
most once a second), so `key_refresh_seconds` should stay below `key_publish_lead_seconds`.

Never: return a private key outside this module and `tokens`, or publish one in the JWKS.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from joserfc import jws
from joserfc.jwk import ECKey, Key, OKPKey, import_key
from sqlalchemy import insert, or_, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncEngine

from auth.config import AuthConfig
from auth.models import signing_keys

__all__ = ["KeyRing", "SigningKey"]

_CURVES = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521", "EdDSA": "Ed25519"}
_FORCED_REFRESH_INTERVAL = 1.0


@dataclass(frozen=True)
class SigningKey:
    kid: str
    alg: str
    private: Key
    public_jwk: dict[str, Any]
    created_at: float
    activates_at: float
    retired_at: float | None
    expires_from_jwks_at: float | None

    def published(self, now: float) -> bool:
        return self.expires_from_jwks_at is None or now < self.expires_from_jwks_at

    def signs(self, now: float) -> bool:
        return self.activates_at <= now and (self.retired_at is None or now < self.retired_at)


def _epoch(value: datetime | None) -> float | None:
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()


def _at(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _from_row(row: RowMapping) -> SigningKey:
    return SigningKey(
        kid=row["kid"],
        alg=row["alg"],
        private=import_key(json.loads(row["private_jwk"])),
        public_jwk=json.loads(row["public_jwk"]),
        created_at=_epoch(row["created_at"]) or 0.0,
        activates_at=_epoch(row["activates_at"]) or 0.0,
        retired_at=_epoch(row["retired_at"]),
        expires_from_jwks_at=_epoch(row["expires_from_jwks_at"]),
    )


def _generate(alg: str) -> Key:
    params = {"kid": secrets.token_urlsafe(12), "alg": alg, "use": "sig"}
    if alg == "EdDSA":
        return OKPKey.generate_key(_CURVES[alg], params, private=True)  # type: ignore[arg-type]
    return ECKey.generate_key(_CURVES[alg], params, private=True)  # type: ignore[arg-type]


class KeyRing:
    """The signing keys of every hub instance, cached in memory and read from the database."""

    def __init__(self, engine: AsyncEngine, config: AuthConfig, clock: Callable[[], float]) -> None:
        self._engine = engine
        self._config = config
        self._clock = clock
        self._keys: dict[str, SigningKey] = {}
        self._loaded_at = float("-inf")
        self._forced_at = float("-inf")
        self._lock = asyncio.Lock()

    async def load(self) -> None:
        now = self._clock()
        query = select(signing_keys).where(
            or_(signing_keys.c.expires_from_jwks_at.is_(None),
                signing_keys.c.expires_from_jwks_at > _at(now))
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        self._keys = {row["kid"]: _from_row(row) for row in rows}
        self._loaded_at = now

    async def refresh(self, *, force: bool = False) -> None:
        """Reload if stale; `force` (an unknown kid) reloads at most once a second."""
        now = self._clock()
        stale = now - self._loaded_at >= self._config.key_refresh_seconds
        if not stale and not (force and now - self._forced_at >= _FORCED_REFRESH_INTERVAL):
            return
        async with self._lock:
            if force:
                self._forced_at = now
            await self.load()

    async def ensure_active(self) -> None:
        """Make sure some key signs now; the first start of a hub creates one at once."""
        await self.load()
        if self._current(self._clock()) is None:
            await self._insert(activates_at=self._clock())
            await self.load()

    async def rotate(self) -> str:
        """Publish a new key now; it signs after the publish lead and retires all others then."""
        now = self._clock()
        activates = now + self._config.key_publish_lead_seconds
        c = self._config
        gone = activates + c.token_ttl_seconds + c.leeway_seconds + c.key_grace_seconds
        kid = await self._insert(activates_at=activates, retire_others=(activates, gone))
        await self.load()
        return kid

    async def _insert(
        self, activates_at: float, retire_others: tuple[float, float] | None = None
    ) -> str:
        key = _generate(self._config.signing_algorithm)
        kid = str(key.kid)
        async with self._engine.begin() as conn:
            if retire_others is not None:
                retired, gone = retire_others
                await conn.execute(
                    update(signing_keys)
                    .where(signing_keys.c.retired_at.is_(None))
                    .values(retired_at=_at(retired), expires_from_jwks_at=_at(gone))
                )
            await conn.execute(
                insert(signing_keys).values(
                    kid=kid,
                    alg=self._config.signing_algorithm,
                    private_jwk=json.dumps(key.as_dict(private=True)),
                    public_jwk=json.dumps(key.as_dict(private=False)),
                    created_at=_at(self._clock()),
                    activates_at=_at(activates_at),
                )
            )
        return kid

    def _current(self, now: float) -> SigningKey | None:
        signing = [k for k in self._keys.values() if k.signs(now)]
        return max(signing, key=lambda k: k.activates_at, default=None)

    def signing_key(self) -> SigningKey:
        key = self._current(self._clock())
        if key is None:
            raise RuntimeError("no active signing key: AuthService.start() was not awaited")
        return key

    def find(self, kid: object) -> SigningKey | None:
        """The published key named `kid`, or None (unknown, or rotated out of the JWKS)."""
        key = self._keys.get(kid) if isinstance(kid, str) else None
        return key if key is not None and key.published(self._clock()) else None

    def states(self) -> list[tuple[SigningKey, str]]:
        """Every published key, oldest first, with its state: `signing` (the one that signs
        now), `next` (published ahead of its activation) or `retired` (kept for verifiers)."""
        now = self._clock()
        current = self._current(now)
        published = sorted(
            (k for k in self._keys.values() if k.published(now)), key=lambda k: k.created_at
        )
        return [
            (k, "signing" if k is current else "next" if now < k.activates_at else "retired")
            for k in published
        ]

    def jwks(self) -> dict[str, list[dict[str, Any]]]:
        now = self._clock()
        published = sorted(
            (k for k in self._keys.values() if k.published(now)), key=lambda k: k.created_at
        )
        return {"keys": [dict(k.public_jwk) for k in published]}

    def sign_jws(self, payload: bytes, typ: str = "JOSE") -> str:
        """A compact JWS over `payload` with the current key (audit checkpoints, evidence).

        Never with `typ: at+jwt`: the resource server accepts only that type as an access
        token, which is what keeps a signed audit record from passing for one.
        """
        if "at+jwt" in typ.lower():
            raise ValueError("sign_jws never produces access tokens")
        key = self.signing_key()
        header = {"alg": key.alg, "kid": key.kid, "typ": typ}
        return jws.serialize_compact(header, payload, key.private, algorithms=[key.alg])
