"""Client-secret generation and argon2 hashing.

Hashing and verification are deliberately slow (tens of ms): callers run them in a worker
thread, never on the event loop. Secrets are never logged, stored or returned after creation.
"""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_hasher = PasswordHasher()
#: Verified against when the client is unknown, so that timing does not reveal which ids exist.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def new_secret() -> str:
    """A 256-bit random client secret, URL-safe."""
    return secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    return _hasher.hash(secret)


def verify_secret(secret_hash: str | None, secret: str) -> bool:
    """True when `secret` matches; an absent hash still costs one verification."""
    try:
        return _hasher.verify(secret_hash or _DUMMY_HASH, secret) and secret_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
