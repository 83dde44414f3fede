"""Access tokens: issuing them (RFC 9068 JWTs) and verifying them (the resource-server check).

Issuing uses authlib's `JWTBearerTokenGenerator` (RFC 9068 claims, `typ: at+jwt`) with the
key ring's current key. Verifying uses joserfc's `jwt.decode` with an explicit algorithm
allow-list and authlib's `JWTAccessTokenClaims` for the claim checks. authlib's
`JWTBearerTokenValidator` is not used for verification because it decodes with joserfc's
default algorithm list (no per-issuer allow-list), resolves keys synchronously (external JWKS
must be fetched asynchronously, and an unknown kid must trigger a refresh) and hides why a token
was refused. The unverified header and issuer are read only through joserfc's
`jws.extract_compact`, to choose the key set; nothing is trusted before the signature checks.

Never: accept `none` or HMAC, log a token, or let a joserfc exception escape (all become
`Unauthenticated` with a safe description).
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from authlib.oauth2.claims import JWTClaims
from authlib.oauth2.rfc9068 import JWTBearerTokenGenerator
from authlib.oauth2.rfc9068.claims import JWTAccessTokenClaims
from joserfc import jws, jwt
from joserfc.errors import ExpiredTokenError, JoseError, MissingClaimError
from joserfc.jwk import Key, KeySet

from auth._issuers import IssuerKeys
from auth.config import AuthConfig, TrustedIssuer
from auth.errors import Unauthenticated
from auth.exchange import TOKEN_EXCHANGE
from auth.keys import KeyRing
from auth.principal import ActorKind

__all__ = [
    "HubTokenGenerator", "TokenSubject", "TokenVerifier", "VerifiedToken", "scopes_from_claims"
]

# A token naming a person says which kind in this claim; `act` names the client acting.
_ACTOR_KINDS: dict[str, ActorKind] = {"officer": "OFFICER", "subject": "SUBJECT"}


@dataclass(frozen=True)
class TokenSubject:
    """The person an exchanged token names (authlib's "user": `sub` is `get_user_id()`)."""

    person: str
    kind: ActorKind

    def get_user_id(self) -> str:
        return self.person


_ACCESS_TOKEN_TYPES = frozenset({"at+jwt", "application/at+jwt"})


class HubTokenGenerator(JWTBearerTokenGenerator):
    """authlib's RFC 9068 generator, signing with the key ring's current key."""

    def __init__(self, config: AuthConfig, ring: KeyRing) -> None:
        super().__init__(
            issuer=config.issuer, alg=config.signing_algorithm, expires_generator=self._lifetime
        )
        self._ring = ring
        self._audience = config.audience
        self._ttl = config.token_ttl_seconds
        self._exchanged_ttl = min(config.exchanged_token_ttl_seconds, config.token_ttl_seconds)

    def _lifetime(self, client: Any, grant_type: str) -> int:
        return self._exchanged_ttl if grant_type == TOKEN_EXCHANGE else self._ttl

    def get_extra_claims(
        self, client: Any, grant_type: str, user: Any, scope: Any
    ) -> dict[str, Any]:
        if not isinstance(user, TokenSubject):
            return {}
        kind = next(k for k, v in _ACTOR_KINDS.items() if v == user.kind)
        return {"act": {"sub": client.get_client_id()}, "actor_kind": kind}

    def get_jwks(self) -> KeySet:
        # A one-key set makes joserfc write the key's kid into the header.
        return KeySet([self._ring.signing_key().private])

    def get_audiences(self, client: Any, user: Any, scope: Any) -> str:
        return self._audience


@dataclass(frozen=True)
class VerifiedToken:
    """What a valid token says, before the registry and the denylist are consulted."""

    issuer: str
    client_id: str
    scopes: frozenset[str]
    token_id: str
    expires_at: int
    agency_claim: str | None = None
    actor: str | None = None  # the person an exchanged hub token names
    actor_kind: ActorKind = "SYSTEM"


def _string_scopes(value: object, accept_array: bool) -> frozenset[str] | None:
    if isinstance(value, str):
        return frozenset(value.split())
    if accept_array and isinstance(value, list) and all(isinstance(v, str) for v in value):
        return frozenset(value)
    return None


def scopes_from_claims(
    claims: dict[str, Any], *, accept_scp: bool, accept_array: bool
) -> frozenset[str]:
    """The token's scopes. Accepted forms: `scope` as a space-separated string, always;
    `scope` as an array of strings only with `accept_array`; `scp` (string) only with
    `accept_scp`, and `scp` as an array only with both. `scope` wins when both are present.
    A scope claim in a form not accepted refuses the token; no scope claim means no scopes.
    """
    for name, accepted in (("scope", True), ("scp", accept_scp)):
        if name not in claims:
            continue
        scopes = _string_scopes(claims[name], accept_array) if accepted else None
        if scopes is None:
            raise Unauthenticated(f"scope claim form not accepted ({name})")
        return scopes
    return frozenset()


def _unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    try:
        compact = jws.extract_compact(token.encode("ascii"))
        claims = json.loads(compact.payload)
    except (JoseError, ValueError, UnicodeError):
        raise Unauthenticated("malformed token") from None
    if not isinstance(claims, dict):
        raise Unauthenticated("malformed token")
    return dict(compact.headers()), claims


def _claim_failure(exc: JoseError) -> Unauthenticated:
    if isinstance(exc, ExpiredTokenError):
        return Unauthenticated("token expired")
    if isinstance(exc, MissingClaimError):
        return Unauthenticated("token lacks a required claim")
    claim = getattr(exc, "claim", "claim")
    return Unauthenticated(f"invalid {claim} claim" if claim != "nbf" else "token not yet valid")


def _actor(claims: dict[str, Any]) -> tuple[str | None, ActorKind]:
    """Whom a hub token names: a person (an exchanged token: `act` names its own client and
    `actor_kind` the kind), or no one (a client's own token). Anything in between is refused."""
    if "act" not in claims and "actor_kind" not in claims:
        return None, "SYSTEM"
    raw = claims.get("actor_kind")
    kind = _ACTOR_KINDS.get(raw) if isinstance(raw, str) else None
    person = claims.get("sub")
    if claims.get("act") != {"sub": claims["client_id"]} or kind is None or (
        not isinstance(person, str)
    ):
        raise Unauthenticated("invalid act claim")
    return person, kind


class _LRU:
    """Verified tokens by digest of the token string, bounded, evicting the least recent."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[bytes, VerifiedToken] = OrderedDict()

    def get(self, digest: bytes) -> VerifiedToken | None:
        item = self._items.get(digest)
        if item is not None:
            self._items.move_to_end(digest)
        return item

    def put(self, digest: bytes, item: VerifiedToken) -> None:
        self._items[digest] = item
        self._items.move_to_end(digest)
        while len(self._items) > self._size:
            self._items.popitem(last=False)

    def drop(self, digest: bytes) -> None:
        self._items.pop(digest, None)


class TokenVerifier:
    """Signature, algorithm, kid, iss, aud, exp/nbf/iat and scope-form checks, with a cache."""

    def __init__(
        self,
        config: AuthConfig,
        ring: KeyRing,
        issuers: IssuerKeys,
        clock: Callable[[], float],
    ) -> None:
        self._config = config
        self._ring = ring
        self._issuers = issuers
        self._clock = clock
        self._cache = _LRU(config.verified_token_cache_size)

    async def verify(self, token: str) -> VerifiedToken:
        if len(token) > self._config.max_token_bytes:
            raise Unauthenticated("token too large")
        digest = hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()
        cached = self._cache.get(digest)
        if cached is not None:
            if self._clock() < cached.expires_at + self._config.leeway_seconds:
                return cached
            self._cache.drop(digest)
        verified = await self._verify(token)
        self._cache.put(digest, verified)
        return verified

    async def _verify(self, token: str) -> VerifiedToken:
        header, unverified = _unverified(token)
        issuer = unverified.get("iss")
        trusted = self._config.trusted(issuer) if isinstance(issuer, str) else None
        if issuer == self._config.issuer:
            return await self._verify_hub(token, header)
        if trusted is not None:
            return await self._verify_external(token, header, trusted)
        raise Unauthenticated("untrusted issuer")

    async def _verify_hub(self, token: str, header: dict[str, Any]) -> VerifiedToken:
        key = self._ring.find(header.get("kid"))
        if key is None:
            await self._ring.refresh(force=True)
            key = self._ring.find(header.get("kid"))
        if key is None:
            raise Unauthenticated("unknown signing key")
        if str(header.get("typ", "")).lower() not in _ACCESS_TOKEN_TYPES:
            raise Unauthenticated("not an access token")  # e.g. an audit JWS signed by the hub
        c = self._config
        claims = self._decode(token, key.private, [key.alg], c.issuer, c.audience, hub=True)
        actor, actor_kind = _actor(claims)
        return VerifiedToken(
            issuer=c.issuer,
            client_id=claims["client_id"],
            scopes=scopes_from_claims(
                claims, accept_scp=c.accept_scp_claim, accept_array=c.accept_scope_array
            ),
            token_id=claims["jti"],
            expires_at=int(claims["exp"]),
            actor=actor,
            actor_kind=actor_kind,
        )

    async def _verify_external(
        self, token: str, header: dict[str, Any], trusted: TrustedIssuer
    ) -> VerifiedToken:
        key = await self._issuers.find(trusted, header.get("kid"))
        if key is None:
            raise Unauthenticated("unknown signing key")
        claims = self._decode(
            token, key, list(trusted.algorithms), trusted.issuer, trusted.audience, hub=False
        )
        client_id = claims.get("client_id") or claims.get("azp") or claims.get("sub")
        agency = claims.get(trusted.agency_claim) if trusted.agency_claim else None
        if not isinstance(client_id, str) or not (agency is None or isinstance(agency, str)):
            raise Unauthenticated("token names no client")
        external = scopes_from_claims(
            claims, accept_scp=trusted.accept_scp_claim, accept_array=trusted.accept_scope_array
        )
        mapped = frozenset().union(*(trusted.scope_mapping.get(s, frozenset()) for s in external))
        return VerifiedToken(
            issuer=trusted.issuer,
            client_id=client_id,
            scopes=mapped,
            token_id=claims["jti"],
            expires_at=int(claims["exp"]),
            agency_claim=agency,
        )

    def _decode(
        self, token: str, key: Key, algorithms: list[str], issuer: str, audience: str, *, hub: bool
    ) -> dict[str, Any]:
        try:
            decoded = jwt.decode(token, key, algorithms=algorithms)
        except JoseError:
            raise Unauthenticated("invalid token signature") from None
        # External IdPs commonly send typ "JWT"; hub tokens must be "at+jwt" (checked above).
        claims_cls = JWTAccessTokenClaims if hub else JWTClaims
        options = self._claim_options(issuer, audience, hub=hub)
        claims = claims_cls(decoded.claims, decoded.header, options)
        try:
            claims.validate(now=int(self._clock()), leeway=self._config.leeway_seconds)
        except JoseError as exc:
            raise _claim_failure(exc) from None
        client_id_ok = not hub or isinstance(claims.get("client_id"), str)
        if not isinstance(claims.get("jti"), str) or not client_id_ok:
            raise Unauthenticated("token lacks a required claim")
        return dict(claims)

    @staticmethod
    def _claim_options(issuer: str, audience: str, *, hub: bool) -> dict[str, Any]:
        options: dict[str, Any] = {
            "iss": {"essential": True, "value": issuer},
            "aud": {"essential": True, "value": audience},
            "exp": {"essential": True},
            "iat": {"essential": hub},
            "jti": {"essential": True},
            "sub": {"essential": hub},
            "client_id": {"essential": hub},
        }
        return options
