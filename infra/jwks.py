"""Reading a JWK set published by another system (the WMS, an agency's identity provider).

Only public, asymmetric keys with a `kid` are kept: a private or symmetric key in a published
set is a publisher's mistake and must never become a verification key here.
"""

from __future__ import annotations

from joserfc.errors import JoseError
from joserfc.jwk import Key, KeySet

__all__ = ["public_signing_keys"]


def public_signing_keys(data: object) -> dict[str, Key]:
    """The usable public signing keys of a JWK set, by kid; ValueError if it is not a set."""
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
        raise ValueError("not a JWK set")
    keys: dict[str, Key] = {}
    for item in data["keys"]:
        try:
            key = KeySet.import_key_set({"keys": [item]}).keys[0]
        except (JoseError, ValueError, TypeError, KeyError):
            continue  # one unusable key must not hide the others
        if key.key_type != "oct" and not key.is_private and isinstance(key.kid, str):
            keys[key.kid] = key
    return keys
