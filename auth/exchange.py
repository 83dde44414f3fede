"""Token exchange (RFC 8693): a client trades an identity provider's assertion about a person for
a hub token naming that person.

The client authenticates as for client credentials and sends the assertion as `subject_token`
(`subject_token_type` = `urn:ietf:params:oauth:token-type:jwt`). The assertion must be signed
by an identity provider registered for that very client (`auth.identity_providers`), with an
asymmetric key from its JWKS; its `iss` that provider, its `aud` the hub (issuer or token
endpoint), with `sub`, `jti`, `iat` and `exp` no further than `max_assertion_lifetime_seconds`
from `iat`; roles in `roles` (a list of strings). An assertion that names an actor itself
(`act`, `may_act`) is refused, not ignored: the hub alone says who acts (the authenticated
client). An `azp` or `client_id` in it must name the client presenting it. A hub access token is
never a subject token. Each assertion is used once: its `jti` is remembered in the shared store
until it expires (checked last, so a refused request does not burn a good assertion).

The token issued has `sub` = the person, `act` = {"sub": client}, the scopes that are the
client's, opened by the asserted roles and asked for (`scope`, default all of them), and lives
`exchanged_token_ttl_seconds`. Refusals follow RFC 8693 2.2.2: a subject token that is invalid
or unacceptable is `invalid_request`; `audience`/`resource` naming anything but the hub is
`invalid_target`; a client with no identity provider is `unauthorized_client`; roles that open
nothing (or less than asked) are `invalid_scope` (RFC 6749 5.2).

Never: trust a claim before the signature checked; log or echo an assertion.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from joserfc import jws, jwt
from joserfc.errors import ExpiredTokenError, JoseError
from joserfc.jwk import Key, KeySet

from auth._issuers import IssuerKeys
from auth.config import ASYMMETRIC_ALGORITHMS, AuthConfig
from auth.errors import Unauthenticated
from auth.identity_providers import IdentityProvider, IdentityProviderRegistry
from auth.principal import ActorKind
from auth.scopes import PERSON_SCOPES
from infra.jwks import public_signing_keys

__all__ = [
    "ACCESS_TOKEN_TYPE",
    "JWT_TOKEN_TYPE",
    "TOKEN_EXCHANGE",
    "ExchangeRefused",
    "IdentityProviderUnavailable",
    "Person",
    "SubjectAssertions",
    "kind_of",
]

# RFC 8693's grant and token type URNs (names, not secrets).
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"  # noqa: S105
JWT_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:jwt"  # noqa: S105
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"  # noqa: S105

_ACCESS_TOKEN_TYPES = frozenset({"at+jwt", "application/at+jwt"})
_MAX_ISSUER = 512
_MAX_SUBJECT = 128
_MAX_ROLES = 32


class ExchangeRefused(Exception):
    """A token exchange refused with an OAuth `error` and a description safe to show."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


class IdentityProviderUnavailable(Exception):
    """The provider's JWKS could not be fetched: not the caller's fault (503)."""


def _invalid(description: str) -> ExchangeRefused:
    return ExchangeRefused("invalid_request", description)


@dataclass(frozen=True)
class Person:
    """Who a verified assertion names, and what its roles open (before the client's cap)."""

    subject: str
    kind: ActorKind
    issuer: str
    scopes: frozenset[str]
    jti: str
    expires_at: float


def kind_of(provider: IdentityProvider) -> ActorKind:
    return "SUBJECT" if provider.kind == "subject" else "OFFICER"


def _unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    try:
        compact = jws.extract_compact(token.encode("ascii"))
        claims = json.loads(compact.payload)
    except (JoseError, ValueError, UnicodeError):
        raise _invalid("malformed subject token") from None
    if not isinstance(claims, dict):
        raise _invalid("malformed subject token")
    return dict(compact.headers()), claims


def _usable_issuer(issuer: object) -> str | None:
    """The `iss` if the registry could hold it (never send NULs or megabytes to the database)."""
    if isinstance(issuer, str) and 0 < len(issuer) <= _MAX_ISSUER and issuer.isprintable():
        return issuer
    return None


def _roles(claims: dict[str, Any]) -> list[str]:
    roles = claims.get("roles", [])
    if not isinstance(roles, list) or len(roles) > _MAX_ROLES or not all(
        isinstance(r, str) for r in roles
    ):
        raise _invalid("subject token roles must be a list of strings")
    return roles


class SubjectAssertions:
    """Verifies a subject token presented by a client against that client's providers."""

    def __init__(
        self,
        config: AuthConfig,
        providers: IdentityProviderRegistry,
        keys: IssuerKeys,
        clock: Callable[[], float],
    ) -> None:
        self._config = config
        self._providers = providers
        self._keys = keys
        self._clock = clock
        self._audiences = [config.issuer, config.token_endpoint]

    async def verify(self, client_id: str, token: str) -> Person:
        if not await self._providers.has_any(client_id):
            raise ExchangeRefused(
                "unauthorized_client", "no identity provider is registered for this client"
            )
        if len(token) > self._config.max_token_bytes:
            raise _invalid("subject token too large")
        header, unverified = _unverified(token)
        issuer = _usable_issuer(unverified.get("iss"))
        if str(header.get("typ", "")).lower() in _ACCESS_TOKEN_TYPES or (
            issuer == self._config.issuer
        ):
            raise _invalid("an access token is not a subject token")
        if issuer is None:
            raise _invalid("unknown issuer")
        provider = await self._providers.find(client_id, issuer)
        if provider is None:
            if await self._providers.trusted_elsewhere(issuer):
                raise _invalid("issuer not trusted for this client")
            raise _invalid("unknown issuer")
        key = await self._key(provider, header.get("kid"))
        claims = self._decode(token, key, provider)
        _check_binding(claims, client_id)
        return Person(
            subject=claims["sub"],
            kind=kind_of(provider),
            issuer=provider.issuer,
            scopes=_opened(provider, _roles(claims)),
            jti=claims["jti"],
            expires_at=float(claims["exp"]),
        )

    async def _key(self, provider: IdentityProvider, kid: object) -> Key:
        if provider.jwks is not None:
            registered = public_signing_keys(dict(provider.jwks))
            key = registered.get(kid) if isinstance(kid, str) else None
        else:
            assert provider.jwks_url is not None
            try:
                key = await self._keys.find_at(provider.jwks_url, provider.jwks_cache_seconds, kid)
            except Unauthenticated:
                raise IdentityProviderUnavailable(provider.issuer) from None
        if key is None:
            raise _invalid("unknown signing key")
        return key

    def _decode(self, token: str, key: Key, provider: IdentityProvider) -> dict[str, Any]:
        try:
            decoded = jwt.decode(token, KeySet([key]), algorithms=sorted(ASYMMETRIC_ALGORITHMS))
        except JoseError:
            raise _invalid("invalid subject token signature") from None
        now = int(self._clock())
        registry = jwt.JWTClaimsRegistry(
            now=now,
            leeway=self._config.leeway_seconds,
            iss={"essential": True, "value": provider.issuer},
            aud={"essential": True, "values": self._audiences},
            sub={"essential": True},
            jti={"essential": True},
            exp={"essential": True},
            iat={"essential": True},
        )
        claims = decoded.claims
        try:
            registry.validate(claims)
        except ExpiredTokenError:
            raise _invalid("subject token expired") from None
        except JoseError as exc:
            claim = getattr(exc, "claim", None)
            if claim == "aud":
                raise _invalid("subject token audience is not the hub") from None
            raise _invalid(f"invalid subject token claim {claim or ''}".strip()) from None
        exp, iat = claims["exp"], claims["iat"]
        if not isinstance(exp, int | float) or not isinstance(iat, int | float):
            raise _invalid("invalid subject token claim exp")
        if exp - iat > self._config.max_assertion_lifetime_seconds:
            raise _invalid("subject token lifetime too long")
        if iat > now + self._config.leeway_seconds:
            raise _invalid("subject token issued in the future")
        subject, jti = claims["sub"], claims["jti"]
        if not isinstance(subject, str) or not 0 < len(subject) <= _MAX_SUBJECT or (
            not subject.isprintable()
        ):
            raise _invalid("subject token names no subject")
        if not isinstance(jti, str) or not 0 < len(jti) <= 256:
            raise _invalid("invalid subject token claim jti")
        return claims


def _check_binding(claims: dict[str, Any], client_id: str) -> None:
    if "act" in claims or "may_act" in claims:
        raise _invalid("a subject token may not name an actor")
    for name in ("azp", "client_id"):
        if name in claims and claims[name] != client_id:
            raise _invalid("subject token issued for another client")


def _opened(provider: IdentityProvider, roles: list[str]) -> frozenset[str]:
    opened = provider.scopes_of(roles)
    # Enforced at registration too; again here, so that no row edited by hand can give a
    # foreigner an agency's scope or an officer a person's.
    if provider.kind == "subject":
        return opened & PERSON_SCOPES
    return opened - PERSON_SCOPES
