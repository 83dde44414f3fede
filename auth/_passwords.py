"""Client-secret generation and argon2 hashing.

Hashing and verification are deliberately slow (about 0.2 s at the default cost): callers run
them in a worker thread, never on the event loop. Secrets are never logged, stored or returned
after creation.
"""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError


class SecretHasher:
    """argon2id at a given cost; the cost is in every hash, so any hasher verifies any hash.

    The defaults are argon2-cffi's (RFC 9106's second recommendation: t=3, 64 MiB, p=4),
    about 0.2 s a hash on a 2-core machine. The embedded test suite lowers them
    (`HUB_SECRET_HASH_*`), since it registers seven clients for every hub it starts.
    """

    def __init__(self, time_cost: int = 3, memory_kib: int = 65536, parallelism: int = 4) -> None:
        self._hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism
        )
        # Verified against when the client is unknown: made now, so every check costs the same.
        self._dummy = self._hasher.hash(secrets.token_urlsafe(16))

    def hash(self, secret: str) -> str:
        return self._hasher.hash(secret)

    def verify(self, secret_hash: str | None, secret: str) -> bool:
        """True when `secret` matches; an absent hash still costs one verification, at this
        hasher's cost, so that timing does not reveal which client ids exist."""
        try:
            return self._hasher.verify(secret_hash or self._dummy, secret) and (
                secret_hash is not None
            )
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False


def new_secret() -> str:
    """A 256-bit random client secret, URL-safe."""
    return secrets.token_urlsafe(32)
