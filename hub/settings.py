"""The one settings object (pydantic-settings, `HUB_*` variables), built at start-up, passed down.

Nothing else in the hub reads `os.environ`.
"""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, IPvAnyNetwork
from pydantic_settings import BaseSettings, SettingsConfigDict

from auth import AuthConfig, TrustedIssuer
from connectors.resilience import Policy
from observability.tracing import Exporter, TracingConfig
from schema.limits import Limits
from schema.purposes import ROOT_FIELDS

__all__ = ["Settings", "TrustedIssuerSettings"]


class TrustedIssuerSettings(BaseModel):
    """An agency identity provider whose tokens are accepted (HUB_TRUSTED_ISSUERS, JSON list)."""

    issuer: str
    jwks_url: str
    audience: str
    scope_mapping: dict[str, list[str]] = Field(default_factory=dict)
    accept_scp_claim: bool = False
    accept_scope_array: bool = False
    agency_claim: str | None = None


def _loopback() -> list[IPvAnyNetwork]:
    return [IPv4Network("127.0.0.0/8"), IPv6Network("::1/128")]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HUB_", env_nested_delimiter="__", extra="ignore")

    # Hub state.
    database_url: str = "sqlite+aiosqlite:///var/hub.db"
    redis_url: str | None = None
    redis_prefix: str = "hub:"
    # How many `hub serve` processes share this database (behind a load balancer). Above one,
    # Redis is required: an in-process store would give each its own revocations and counters.
    instances: int = Field(default=1, ge=1)
    data_dir: Path = Path("var")
    # Revocations, disabled clients and permit events reach each process through a replica fed
    # by a Redis Stream (infra.shared_state); one that has not heard from Redis for this long
    # refuses bearer requests (503) rather than judge tokens on what it may have missed.
    shared_state_max_staleness: float = Field(default=3.0, gt=0)

    # Source systems. Empty means "not configured": `hub demo` fills them with its simulators.
    wms_url: str | None = None
    cards_url: str | None = None
    agency_databases: dict[str, str] = Field(default_factory=dict)  # region code -> SQLAlchemy URL
    upstream_timeout_seconds: float = 2.0
    upstream_timeouts: dict[str, float] = Field(default_factory=dict)  # "wms", "agency-420100"…
    upstream_max_connections: int = 100  # the HTTP pool, shared by the HTTP source systems
    # Resilience (connectors.resilience), per source system.
    upstream_retries: int = 2  # extra attempts for safe reads, within the same deadline
    upstream_max_concurrency: int = 50
    # The breaker opens on a failure rate over a sliding window (connectors.resilience).
    breaker_min_calls: int = Field(default=20, ge=1)
    breaker_failure_ratio: float = Field(default=0.5, gt=0, le=1)
    breaker_window_seconds: float = Field(default=10.0, gt=0)
    breaker_failure_threshold: int | None = Field(default=None, ge=1)  # former name of min_calls
    breaker_open_seconds: float = 10.0
    breaker_half_open_calls: int = Field(default=1, ge=1)
    cache_ttl_seconds: float = 30.0  # the shared permit cache; 0 turns it off

    # Permit change events (hub.events) and the webhooks they trigger (hub.webhooks).
    event_max_age_seconds: float = 600.0
    webhook_max_attempts: int = 8
    webhook_backoff_seconds: float = 2.0
    webhook_timeout_seconds: float = 5.0
    max_subscriptions_per_connection: int = Field(default=20, ge=1)  # per WebSocket

    # Tokens.
    issuer: str = "http://127.0.0.1:8000"
    audience: str = "permit-hub"
    token_ttl_seconds: int = 600
    # Token exchange: a token naming a person lives this long (at most token_ttl_seconds); an
    # identity provider's assertion may live at most max_assertion_lifetime_seconds.
    exchanged_token_ttl_seconds: int = Field(default=300, ge=1)
    max_assertion_lifetime_seconds: int = Field(default=600, ge=1, le=3600)
    accept_scp_claim: bool = False
    accept_scope_array: bool = False
    trusted_issuers: list[TrustedIssuerSettings] = Field(default_factory=list)
    signing_key_max_age_seconds: float = 90 * 86400  # older: /readyz reports it unready
    # argon2id cost of client secrets; every hash records its own, so lowering it (the
    # embedded test suite does) leaves the secrets hashed before still verifiable.
    secret_hash_time_cost: int = 3
    secret_hash_memory_kib: int = 65536
    secret_hash_parallelism: int = 4
    # Failed client authentications per minute per client id and per address (shared through
    # Redis), then refused unheard; and client-secret checks at once per process.
    auth_failures_per_minute: int = 20
    auth_max_concurrent_hashes: int = 2

    # Audit log.
    audit_checkpoint_every: int = 1000
    audit_checkpoint_seconds: float = 60.0
    audit_commit_timeout_seconds: float = 5.0

    # Operational endpoints (hub.operations): /metrics and /readyz's detail are shown to these
    # socket addresses (IPs or CIDRs, a JSON list), or to a bearer token with `ops:read`.
    operations_allowed: list[IPvAnyNetwork] = Field(default_factory=_loopback)

    # Request limits.
    max_body_bytes: int = 256 * 1024
    # A connection that has not sent a request's complete headers this long after it opened
    # (or after the last response) is closed; a body not complete this long after its
    # headers gets 408 and the connection is closed.
    request_header_timeout_seconds: float = Field(default=10.0, gt=0)
    request_body_timeout_seconds: float = Field(default=10.0, gt=0)
    max_batch_size: int = 500

    # Query limits (schema.limits), checked before execution; over one: QUERY_TOO_COMPLEX.
    max_document_bytes: int = 16 * 1024
    max_tokens: int = 5000
    max_depth: int = 10
    max_aliases: int = 30
    max_root_fields: int = 20
    max_fields: int = 200
    max_cost: int = 20_000
    cost_budget_per_minute: int = 200_000  # per client, shared through Redis (schema.limits)
    rate_limit_per_minute: int = 1200  # GraphQL requests per client, shared through Redis
    # Seconds between two reconciliations of this process's rate and cost counts with Redis
    # (infra.counters): how far the instances may together overshoot a limit (README.md).
    counter_sync_interval: float = Field(default=0.1, gt=0)

    # Trusted documents (hub.documents): "enforce" runs only each client's registered ones.
    trusted_documents: Literal["allow", "enforce"] = "allow"

    # Tracing (observability.tracing). Off: spans are not recorded, trace ids still flow.
    tracing: Literal["on", "off"] = "off"
    tracing_exporter: Exporter = "none"
    tracing_endpoint: str | None = None
    # New traces sampled at this ratio; a caller's sampled `traceparent` is always followed.
    tracing_sample_ratio: float = Field(default=0.1, ge=0.0, le=1.0)

    # Proxies whose X-Forwarded-For/-Proto the server believes (addresses or CIDR networks);
    # empty: none, the peer's address is the client's.
    trusted_proxies: list[IPvAnyNetwork] = Field(default_factory=list)

    demo: bool = False
    # One log line per request (method, path, status, client, duration); the demo turns it on.
    request_log: bool = False

    def forwarded_allow_ips(self) -> list[str]:
        """`trusted_proxies` as uvicorn's `forwarded_allow_ips`."""
        return [str(network) for network in self.trusted_proxies]

    def shared_state_problem(self, workers: int = 1) -> str | None:
        """Why this hub cannot run as configured with `workers` processes, or None."""
        if self.redis_url or (workers <= 1 and self.instances <= 1):
            return None
        return (
            f"--workers {workers} x HUB_INSTANCES={self.instances} needs shared state: set"
            " HUB_REDIS_URL (without it each process keeps its own revoked tokens, replay"
            " guards and budgets)"
        )

    def tracing_config(self) -> TracingConfig:
        return TracingConfig(
            enabled=self.tracing == "on", exporter=self.tracing_exporter,
            endpoint=self.tracing_endpoint, sample_ratio=self.tracing_sample_ratio,
        )

    def upstream_policy(self, upstream: str) -> Policy:
        return Policy(
            timeout=self.upstream_timeouts.get(upstream, self.upstream_timeout_seconds),
            retries=self.upstream_retries,
            max_concurrency=self.upstream_max_concurrency,
            min_calls=self.breaker_failure_threshold or self.breaker_min_calls,
            failure_ratio=self.breaker_failure_ratio,
            window_seconds=self.breaker_window_seconds,
            open_seconds=self.breaker_open_seconds,
            half_open_calls=self.breaker_half_open_calls,
        )

    def query_limits(self) -> Limits:
        return Limits(
            max_depth=self.max_depth, max_aliases=self.max_aliases,
            max_root_fields=self.max_root_fields, max_fields=self.max_fields,
            max_document_bytes=self.max_document_bytes, max_tokens=self.max_tokens,
            max_cost=self.max_cost, max_batch_items=self.max_batch_size,
        )

    def auth_config(self) -> AuthConfig:
        return AuthConfig(
            issuer=self.issuer,
            audience=self.audience,
            token_ttl_seconds=self.token_ttl_seconds,
            exchanged_token_ttl_seconds=self.exchanged_token_ttl_seconds,
            max_assertion_lifetime_seconds=self.max_assertion_lifetime_seconds,
            accept_scp_claim=self.accept_scp_claim,
            accept_scope_array=self.accept_scope_array,
            secret_hash_time_cost=self.secret_hash_time_cost,
            secret_hash_memory_kib=self.secret_hash_memory_kib,
            secret_hash_parallelism=self.secret_hash_parallelism,
            failures_per_minute=self.auth_failures_per_minute,
            max_concurrent_hashes=self.auth_max_concurrent_hashes,
            demo_webhooks=self.demo,
            operations=ROOT_FIELDS,
            trusted_issuers=tuple(
                TrustedIssuer(
                    issuer=t.issuer, jwks_url=t.jwks_url, audience=t.audience,
                    scope_mapping={k: frozenset(v) for k, v in t.scope_mapping.items()},
                    accept_scp_claim=t.accept_scp_claim, accept_scope_array=t.accept_scope_array,
                    agency_claim=t.agency_claim,
                )
                for t in self.trusted_issuers
            ),
        )
