"""Settings of the auth package, built by the hub from its own settings object.

Auth never reads the environment: everything it needs arrives in one frozen `AuthConfig`.
Algorithm allow-lists are checked here once, so that no configuration can admit `none` or an
HMAC algorithm (an HMAC "signed" with a published public key is the classic forgery).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from authlib.common.security import is_secure_transport

__all__ = ["ASYMMETRIC_ALGORITHMS", "AuthConfig", "TrustedIssuer"]

#: Every algorithm any part of auth may ever accept: asymmetric signatures only.
ASYMMETRIC_ALGORITHMS: frozenset[str] = frozenset(
    {"ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "EdDSA"}
)


def _check_algorithms(algorithms: tuple[str, ...], where: str) -> None:
    unsafe = set(algorithms) - ASYMMETRIC_ALGORITHMS
    if unsafe or not algorithms:
        raise ValueError(f"{where}: only asymmetric signature algorithms, not {sorted(unsafe)}")


@dataclass(frozen=True)
class TrustedIssuer:
    """An agency identity provider whose access tokens the hub accepts.

    `scope_mapping` maps the IdP's scope names to hub scopes; IdP scopes that are not mapped
    are ignored. The token's client (claim `client_id`, else `azp`, else `sub`) must be
    registered in the hub's client registry with `external_issuer` equal to `issuer`: that
    registration gives the agency, the allowed purposes and the enabled flag, and caps the
    mapped scopes.
    """

    issuer: str
    jwks_url: str
    audience: str
    scope_mapping: Mapping[str, frozenset[str]] = field(default_factory=dict)
    accept_scp_claim: bool = False
    accept_scope_array: bool = False
    agency_claim: str | None = None
    algorithms: tuple[str, ...] = ("RS256", "ES256", "PS256")
    jwks_cache_seconds: float = 300.0

    def __post_init__(self) -> None:
        _check_algorithms(self.algorithms, f"trusted issuer {self.issuer}")
        mapping = {name: frozenset(scopes) for name, scopes in self.scope_mapping.items()}
        object.__setattr__(self, "scope_mapping", MappingProxyType(mapping))


@dataclass(frozen=True)
class AuthConfig:
    """Authorization-server and resource-server settings.

    Key rotation timeline: a new key is published in the JWKS `key_publish_lead_seconds`
    before it starts signing; the key it replaces stops signing then and stays published
    until `token_ttl_seconds + leeway_seconds + key_grace_seconds` later, when the last token
    it signed has expired. After that, tokens naming it are refused as "unknown key".
    """

    issuer: str
    audience: str
    token_ttl_seconds: int = 600
    leeway_seconds: int = 30
    max_token_bytes: int = 8192
    signing_algorithm: str = "ES256"
    key_publish_lead_seconds: int = 300
    key_grace_seconds: int = 60
    key_refresh_seconds: float = 30.0
    client_cache_seconds: float = 5.0
    verified_token_cache_size: int = 10_000
    trusted_issuers: tuple[TrustedIssuer, ...] = ()
    accept_scp_claim: bool = False
    accept_scope_array: bool = False
    # argon2id cost of client secrets (argon2-cffi's defaults, RFC 9106's second choice).
    secret_hash_time_cost: int = 3
    secret_hash_memory_kib: int = 65536
    secret_hash_parallelism: int = 4
    # Failed client authentications per minute, per client id and per client address, before
    # further attempts are refused without hashing (counted in the shared store).
    failures_per_minute: int = 20
    # Client-secret verifications running at once in this process (each holds
    # `secret_hash_memory_kib`); more wait their turn.
    max_concurrent_hashes: int = 2
    # The embedded demo: webhooks may use http to a loopback address (auth.webhook_targets).
    demo_webhooks: bool = False
    # Token exchange (`auth.exchange`): the lifetime of a token naming a person (never longer
    # than `token_ttl_seconds`, which the key rotation timeline counts on), and the
    # longest an identity provider's assertion may live (`exp - iat`); its jti is remembered
    # in the shared store until it expires.
    exchanged_token_ttl_seconds: int = 300
    max_assertion_lifetime_seconds: int = 600
    # The root fields a purpose may cover (the hub gives its schema's); empty: any well-formed
    # name (`auth.purposes`).
    operations: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if not is_secure_transport(self.issuer):
            raise ValueError("issuer: an https URL (http only on a loopback address)")
        _check_algorithms((self.signing_algorithm,), "signing_algorithm")
        if not (
            self.secret_hash_time_cost >= 1
            and self.secret_hash_parallelism >= 1
            and self.secret_hash_memory_kib >= 8 * self.secret_hash_parallelism
        ):
            raise ValueError(
                "secret hash cost: time >= 1, parallelism >= 1, memory >= 8 KiB per lane"
            )
        if self.exchanged_token_ttl_seconds < 1:
            raise ValueError("exchanged_token_ttl_seconds: at least 1")
        if not 0 < self.max_assertion_lifetime_seconds <= 3600:
            raise ValueError("max_assertion_lifetime_seconds: between 1 and 3600")
        if self.failures_per_minute < 1 or self.max_concurrent_hashes < 1:
            raise ValueError("failures_per_minute and max_concurrent_hashes: at least 1")
        if self.signing_algorithm not in {"ES256", "ES384", "ES512", "EdDSA"}:
            raise ValueError("signing_algorithm: the key ring generates EC or OKP keys only")
        if len({t.issuer for t in self.trusted_issuers} | {self.issuer}) != (
            len(self.trusted_issuers) + 1
        ):
            raise ValueError("trusted_issuers: issuers must be distinct and differ from the hub's")

    @property
    def token_endpoint(self) -> str:
        return self.issuer.rstrip("/") + "/oauth/token"

    def url(self, path: str) -> str:
        return self.issuer.rstrip("/") + path

    def trusted(self, issuer: str) -> TrustedIssuer | None:
        return next((t for t in self.trusted_issuers if t.issuer == issuer), None)
