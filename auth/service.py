"""`AuthService`: the one object the hub builds to use the auth package.

It composes the client registry, the key ring, the shared denylist, the token verifier and the
authlib authorization server, and offers the hot-path check (`authenticate`), the four HTTP
routes, the registry operations the CLI wraps, token issuance, key rotation and JWS signing.

Resource-server check, top to bottom (`authenticate`): Bearer header → size → signature with a
known kid and an allowed algorithm → iss, aud, exp/nbf/iat (with leeway) → scope claim form →
client registered, enabled and (for external IdPs) bound to that issuer (→ `TokenClaims`) →
denylist (revoked jti, disabled client), this instance's replica of it, failing closed when the
replica is too stale → `Principal`.
Verified tokens are cached in an LRU until they expire; the client and denylist steps run on
every request.

Events go to `on_event` before the response leaves; if it raises (the audit log is down), the
exception propagates and the hub answers with an error: no audit, no token.

Its place in the request path: docs/architecture.md.

Never: log or return a token or secret; read os.environ; block the event loop on argon2.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from auth._gate import Answer, ClientAuthGate
from auth._issuers import IssuerKeys
from auth._passwords import SecretHasher
from auth._throttle import FailureThrottle
from auth.clients import NATIONAL, Client, ClientRegistry
from auth.config import AuthConfig
from auth.errors import InvalidClient, RegistryError, Unauthenticated, Unavailable
from auth.events import AuthEvent, EventSink
from auth.exchange import TOKEN_EXCHANGE, IdentityProviderUnavailable, Person, SubjectAssertions
from auth.identity_providers import IdentityProvider, IdentityProviderRegistry
from auth.keys import KeyRing, SigningKey
from auth.models import auth_metadata
from auth.principal import Principal, TokenClaims, checked
from auth.purpose import purpose_of_use
from auth.purposes import Purpose, PurposeRegistry
from auth.revocation import DATABASE_ERRORS, Denylist
from auth.scopes import PERSON_SCOPES
from auth.server import (
    AUTH_METHODS,
    Bridge,
    OAuthClient,
    OAuthServer,
    TokenRequest,
    oauth_error,
    oauth_response,
    read_form,
    run_revocation_endpoint,
    run_token_endpoint,
)
from auth.tokens import HubTokenGenerator, TokenVerifier, VerifiedToken
from auth.webhook_targets import WebhookTargets
from infra.forms import BadForm
from infra.kv import KeyValue, KeyValueUnavailable
from infra.shared_state import SharedState

__all__ = ["AuthService", "SecretExchange"]

log = logging.getLogger("auth.service")

_CLIENT_CACHE_SIZE = 10_000
# Shared-state entries of the client registry (the denylist has its own, `auth.revocation`).
CLIENT_CHANGED = "client-changed"
PURPOSES_CHANGED = "purposes-changed"


@dataclass(frozen=True)
class SecretExchange:
    """What `AuthService.exchange_secret` gives: a token, or the RFC 6749 error (and, when the
    failure throttle refused the attempt, the seconds to wait)."""

    token: str | None
    error: str | None
    retry_after: int | None


async def _ignore(event: AuthEvent) -> None:
    return None


class _ClientCache:
    """Registry lookups for the hot path, fresh for `ttl` seconds; a change made on any
    instance drops the entry on every instance (the shared-state stream), and disable also
    goes through the denylist."""

    def __init__(self, registry: ClientRegistry, ttl: float, clock: Callable[[], float]) -> None:
        self._registry = registry
        self._ttl = ttl
        self._clock = clock
        self._items: dict[str, tuple[Client | None, float]] = {}

    async def get(self, client_id: str) -> Client | None:
        hit = self._items.get(client_id)
        if hit is not None and self._clock() - hit[1] < self._ttl:
            return hit[0]
        client = await self._registry.find(client_id)
        if len(self._items) >= _CLIENT_CACHE_SIZE:
            self._items.clear()
        self._items[client_id] = (client, self._clock())
        return client

    def forget(self, client_id: str) -> None:
        self._items.pop(client_id, None)

    def clear(self) -> None:
        self._items.clear()


class AuthService:
    def __init__(
        self,
        engine: AsyncEngine,
        kv: KeyValue,
        config: AuthConfig,
        http: httpx.AsyncClient | None = None,
        on_event: EventSink | None = None,
        *,
        clock: Callable[[], float] = time.time,
        shared_state: SharedState | None = None,
    ) -> None:
        """`shared_state`: the process's reader of the shared-state stream (one is made on
        `kv` if none is given); the service starts and closes it."""
        self.config = config
        self._engine = engine
        self._kv = kv
        self._clock = clock
        self._emit = on_event or _ignore
        self._issuer_keys = IssuerKeys(http, clock)
        hasher = SecretHasher(
            config.secret_hash_time_cost, config.secret_hash_memory_kib,
            config.secret_hash_parallelism,
        )
        self._hasher = hasher
        self.registry = ClientRegistry(engine, hasher, WebhookTargets(demo=config.demo_webhooks))
        self.purposes = PurposeRegistry(engine, config.operations)
        self._clients = _ClientCache(self.registry, config.client_cache_seconds, clock)
        self.identity_providers = IdentityProviderRegistry(engine, self.registry, config.issuer)
        self._assertions = SubjectAssertions(
            config, self.identity_providers, self._issuer_keys, clock
        )
        self._ring = KeyRing(engine, config, clock)
        self.shared_state = shared_state or SharedState(kv)
        self._denylist = Denylist(self.shared_state, engine, config.leeway_seconds, clock)
        self.shared_state.on(CLIENT_CHANGED, self._on_client_changed)
        self.shared_state.on(PURPOSES_CHANGED, lambda _: self._clients.clear())
        self._verifier = TokenVerifier(config, self._ring, self._issuer_keys, clock)
        self._generator = HubTokenGenerator(config, self._ring)
        self._server = OAuthServer(
            config,
            self._generator,
            Bridge(self._bridge_client, self._first_use, self._verified_or_none, self._revoke,
                   self._exchange),
            hasher,
        )
        throttle = FailureThrottle(kv, config.failures_per_minute, clock)
        self._gate = ClientAuthGate(self._server, throttle, config.max_concurrent_hashes)

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self, *, create_tables: bool = False) -> None:
        """Load the keys, creating the first one on a fresh database. `create_tables` is for
        tests and the embedded demo; production databases are migrated with Alembic."""
        if create_tables:
            async with self._engine.begin() as conn:
                await conn.run_sync(auth_metadata.create_all)
        await self._ring.ensure_active()
        await self.shared_state.start()

    async def close(self) -> None:
        await self.shared_state.close()
        await self._issuer_keys.close()

    def _on_client_changed(self, fields: Mapping[str, bytes]) -> None:
        self._clients.forget(fields["client"].decode())

    # -- resource server -----------------------------------------------------------------------

    async def authenticate(self, authorization: str | None) -> Principal:
        """The resource-server check; raises `Unauthenticated` (401) on any failure, and
        `Unavailable` (503) when the hub database cannot answer or the replica of the denylist
        is too stale."""
        claims = await self.identify(authorization)
        return self.judge_revocation(claims)

    async def identify(self, authorization: str | None) -> TokenClaims:
        """`authenticate` without the denylist: token and registry checks only.

        What it returns is not a `Principal`: `judge_revocation` gives that (the request gate
        reports a revocation after the purpose, in the order of its refusals).
        """
        token = _bearer_token(authorization, self.config.max_token_bytes)
        try:
            await self._ring.refresh()
            verified = await self._verifier.verify(token)
            client = await self._clients.get(verified.client_id)
        except DATABASE_ERRORS as exc:
            # A one-line log and a 503: the caller should retry, not fetch a new token.
            log.warning("hub database unavailable (%s); bearer token not checked",
                        type(exc).__name__)
            raise Unavailable("the hub database is unavailable") from None
        return _claims(verified, client, self.config.issuer)

    def judge_revocation(self, claims: TokenClaims) -> Principal:
        """Raises `Unauthenticated` if the denylist denies the token (revoked, client
        disabled), `Unavailable` if this instance's replica of it is too stale to say. A local
        lookup: no round trip."""
        self._denylist.check(claims.issuer, claims.token_id, claims.client_id)
        return checked(claims)

    def purpose_of_use(self, claims: TokenClaims, header_value: str | None) -> str:
        """Checked on the claims, so that the gate can report it in its order, after
        revocation (which it learns later, with the shared counters)."""
        return purpose_of_use(claims, header_value)

    # -- tokens and keys -----------------------------------------------------------------------

    async def issue_token(self, client_id: str, scope: str | None = None) -> str:
        """A token for `client_id` without client authentication (the `hub token` CLI)."""
        client = await self.registry.get(client_id)
        if not client.enabled or client.external_issuer is not None:
            raise InvalidClient(f"client {client_id!r} cannot receive hub tokens")
        oauth_client = OAuthClient(client_id, client, self._hasher)
        if oauth_client.get_allowed_scope(scope) is None:
            # e.g. the e-SSC app: its person scopes come only with a person (token exchange).
            raise RegistryError(f"client {client_id!r} has no such scope for a token of its own")
        await self._ring.refresh()
        token = self._generator.generate(
            "client_credentials", oauth_client, scope=scope, include_refresh_token=False,
        )
        await self._emit(AuthEvent("token_issued", client_id, "success", detail="method=cli"))
        return str(token["access_token"])

    async def rotate_keys(self) -> str:
        kid = await self._ring.rotate()
        await self._emit(AuthEvent("key_rotated", None, "success", detail=f"kid={kid}"))
        return kid

    async def sign_jws(self, payload: bytes, typ: str = "JOSE") -> str:
        await self._ring.refresh()
        return self._ring.sign_jws(payload, typ)

    def signing_key_age(self) -> float:
        """Seconds since the key that signs now was created (readiness reports it)."""
        return max(0.0, self._clock() - self._ring.signing_key().created_at)

    async def key_states(self) -> list[tuple[SigningKey, str]]:
        """Every published key with its state (`hub keys list`): signing, next or retired."""
        await self._ring.refresh(force=True)
        return self._ring.states()

    def jwks(self) -> dict[str, list[dict[str, Any]]]:
        """Public keys of every published key: signing, about to sign, and retired-but-kept."""
        return self._ring.jwks()

    # -- client registry -----------------------------------------------------------------------

    async def add_client(
        self,
        client_id: str,
        agency: str,
        scopes: Iterable[str],
        purposes: Iterable[str],
        *,
        public_key: Mapping[str, Any] | None = None,
        external_issuer: str | None = None,
        embargoed_until: date | None = None,
        webhook_url: str | None = None,
        jurisdiction: Iterable[str] = (NATIONAL,),
    ) -> tuple[Client, str | None]:
        """Register a client; returns it and its secret (shown once; None for key/IdP clients)."""
        client, secret = await self.registry.add(
            client_id, agency, scopes, purposes, public_key=public_key,
            external_issuer=external_issuer, embargoed_until=embargoed_until,
            webhook_url=webhook_url, jurisdiction=jurisdiction,
        )
        await self._denylist.set_client_disabled(client_id, False)
        await self._changed(client_id, f"added method={client.auth_method}")
        return client, secret

    async def get_client(self, client_id: str) -> Client:
        return await self.registry.get(client_id)

    async def list_clients(self) -> list[Client]:
        return await self.registry.list()

    async def disable_client(self, client_id: str) -> Client:
        before = await self.registry.get(client_id)
        client = await self.registry.set_enabled(client_id, False)
        await self._denylist.set_client_disabled(client_id, True)
        await self._changed(client_id, _change("enabled", before.enabled, False))
        return client

    async def enable_client(self, client_id: str) -> Client:
        before = await self.registry.get(client_id)
        client = await self.registry.set_enabled(client_id, True)
        await self._denylist.set_client_disabled(client_id, False)
        await self._changed(client_id, _change("enabled", before.enabled, True))
        return client

    async def set_scopes(self, client_id: str, scopes: Iterable[str]) -> Client:
        before = await self.registry.get(client_id)
        client = await self.registry.set_scopes(client_id, scopes)
        await self._changed(client_id, _change("scopes", before.scopes, client.scopes))
        return client

    async def set_purposes(self, client_id: str, purposes: Iterable[str]) -> Client:
        before = await self.registry.get(client_id)
        client = await self.registry.set_purposes(client_id, purposes)
        await self._changed(client_id, _change("purposes", before.purposes, client.purposes))
        return client

    async def set_jurisdiction(self, client_id: str, prefixes: Iterable[str]) -> Client:
        before = await self.registry.get(client_id)
        client = await self.registry.set_jurisdiction(client_id, prefixes)
        await self._changed(
            client_id, _change("jurisdiction", before.jurisdiction, client.jurisdiction)
        )
        return client

    async def add_identity_provider(
        self,
        client_id: str,
        issuer: str,
        kind: str,
        roles: Mapping[str, Iterable[str]],
        *,
        jwks_url: str | None = None,
        jwks: Mapping[str, Any] | None = None,
    ) -> IdentityProvider:
        """Trust `issuer`'s assertions of officers or persons for `client_id` (token exchange)."""
        if self.config.trusted(issuer) is not None:
            # Its tokens are bearer tokens here (HUB_TRUSTED_ISSUERS): its assertions would be too.
            raise RegistryError(f"issuer: {issuer} is a trusted issuer of access tokens")
        provider = await self.identity_providers.add(
            client_id, issuer, kind, roles, jwks_url=jwks_url, jwks=jwks
        )
        await self._changed(client_id, f"idp added issuer={issuer} kind={kind}")
        return provider

    async def remove_identity_provider(self, client_id: str, issuer: str) -> bool:
        removed = await self.identity_providers.remove(client_id, issuer)
        if removed:
            await self._changed(client_id, f"idp removed issuer={issuer}")
        return removed

    async def list_identity_providers(self, client_id: str | None = None) -> list[IdentityProvider]:
        return await self.identity_providers.list(client_id)

    # -- purpose registry ----------------------------------------------------------------------

    async def add_purpose(
        self, name: str, operations: Iterable[str], *, needs_officer: bool = False
    ) -> Purpose:
        purpose = await self.purposes.add(name, operations, needs_officer=needs_officer)
        await self._purpose_changed(purpose, "added")
        return purpose

    async def set_purpose_operations(self, name: str, operations: Iterable[str]) -> Purpose:
        purpose = await self.purposes.set_operations(name, operations)
        await self._purpose_changed(purpose, "operations set")
        return purpose

    async def list_purposes(self) -> list[Purpose]:
        return await self.purposes.list()

    async def _purpose_changed(self, purpose: Purpose, what: str) -> None:
        # Every client registered for it reads it with its registration: read them afresh
        # here; other processes once the shared-state stream brings the change.
        self._clients.clear()
        await self.shared_state.publish(PURPOSES_CHANGED, {})
        operations = tuple(sorted(purpose.operations))
        await self._emit(AuthEvent(
            "purpose_changed", None, "success", detail=f"{what} purpose={purpose.name}",
            purpose=purpose.name, operations=operations,
        ))

    async def _changed(self, client_id: str, detail: str) -> None:
        self._clients.forget(client_id)
        await self.shared_state.publish(CLIENT_CHANGED, {"client": client_id.encode()})
        await self._emit(AuthEvent("client_changed", client_id, "success", detail=detail))

    # -- HTTP routes ---------------------------------------------------------------------------

    def routes(self) -> list[Route]:
        return [
            Route("/oauth/token", self._token_endpoint, methods=["POST"]),
            Route("/oauth/revoke", self._revocation_endpoint, methods=["POST"]),
            Route("/.well-known/jwks.json", self._jwks_endpoint, methods=["GET"]),
            Route("/.well-known/oauth-authorization-server", self._metadata_endpoint,
                  methods=["GET"]),
        ]

    async def _token_endpoint(self, request: Request) -> Response:
        try:
            oauth_request = TokenRequest(
                self.config.token_endpoint, request.headers, await read_form(request)
            )
        except BadForm as exc:
            refused = AuthEvent("token_refused", None, "failure", "invalid_request", str(exc))
            await self._emit(refused)
            return oauth_error(400, "invalid_request", str(exc))
        try:
            answer = await self._gate.run(oauth_request, _address(request), run_token_endpoint)
        except (KeyValueUnavailable, IdentityProviderUnavailable, *DATABASE_ERRORS) as exc:
            return _unavailable("token", exc, "try again later")
        await self._emit(_token_event(oauth_request, answer))
        return oauth_response(answer.status, answer.body, answer.headers)

    async def exchange_secret(
        self, client_id: str, client_secret: str, scope: str, address: str
    ) -> SecretExchange:
        """The token endpoint's client_secret_post exchange without its HTTP form: for a page
        (the auditor's console) that signs a client in. The same checks, failure throttle and
        audited events as `/oauth/token`; the token goes to the caller only, never to a page."""
        form = {
            "grant_type": "client_credentials", "client_id": client_id,
            "client_secret": client_secret, "scope": scope,
        }
        oauth_request = TokenRequest(self.config.token_endpoint, Headers(), form)
        try:
            answer = await self._gate.run(oauth_request, address, run_token_endpoint)
        except (KeyValueUnavailable, *DATABASE_ERRORS) as exc:
            log.warning("token exchange: dependency unavailable (%s)", type(exc).__name__)
            raise Unavailable("the hub cannot check credentials now") from None
        await self._emit(_token_event(oauth_request, answer))
        if answer.status == 200:
            return SecretExchange(str(answer.body["access_token"]), None, None)
        error = answer.body.get("error") if isinstance(answer.body, dict) else None
        retry_after = answer.throttled.retry_after if answer.throttled is not None else None
        return SecretExchange(None, str(error or "invalid_request"), retry_after)

    async def _revocation_endpoint(self, request: Request) -> Response:
        try:
            oauth_request = TokenRequest(
                self.config.url("/oauth/revoke"), request.headers, await read_form(request)
            )
        except BadForm as exc:
            return oauth_error(400, "invalid_request", str(exc))
        try:
            answer = await self._gate.run(
                oauth_request, _address(request), run_revocation_endpoint
            )
        except (Unavailable, KeyValueUnavailable, *DATABASE_ERRORS) as exc:
            return _unavailable("revocation", exc, "revocation not recorded")
        refused = _revocation_refusal(oauth_request, answer)
        if refused is not None:
            await self._emit(refused)
        if oauth_request.revoked is not None:
            revoked = oauth_request.revoked
            await self._emit(AuthEvent(
                "token_revoked", revoked.client_id, "success", detail=f"jti={revoked.token_id}"
            ))
        return oauth_response(answer.status, answer.body, answer.headers)

    async def _jwks_endpoint(self, request: Request) -> Response:
        await self._ring.refresh()
        return JSONResponse(self.jwks(), headers={"Cache-Control": "public, max-age=60"})

    async def _metadata_endpoint(self, request: Request) -> Response:
        return JSONResponse(self.metadata(), headers={"Cache-Control": "public, max-age=300"})

    def metadata(self) -> dict[str, Any]:
        """RFC 8414 authorization server metadata."""
        c = self.config
        algs = ["ES256", "ES384", "PS256", "RS256", "EdDSA"]
        return {
            "issuer": c.issuer,
            "token_endpoint": c.token_endpoint,
            "jwks_uri": c.url("/.well-known/jwks.json"),
            "revocation_endpoint": c.url("/oauth/revoke"),
            "scopes_supported": sorted(self._server.scopes_supported),
            # REQUIRED by RFC 8414 although there is no authorization endpoint: "none" is the
            # registered response type that issues nothing.
            "response_types_supported": ["none"],
            "grant_types_supported": ["client_credentials", TOKEN_EXCHANGE],
            "token_endpoint_auth_methods_supported": AUTH_METHODS,
            "token_endpoint_auth_signing_alg_values_supported": algs,
            "revocation_endpoint_auth_methods_supported": AUTH_METHODS,
            "revocation_endpoint_auth_signing_alg_values_supported": algs,
        }

    # -- bridge for authlib's worker thread ----------------------------------------------------

    async def _bridge_client(self, client_id: str) -> Client | None:
        client = await self.registry.find(client_id)
        return client if client is not None and client.external_issuer is None else None

    async def _first_use(self, key: str, expires_at: float) -> bool:
        ttl = max(1.0, expires_at - self._clock() + self.config.leeway_seconds)
        return await self._kv.incr(f"auth:assertion-jti:{key}", 1, ttl_seconds=ttl) == 1

    async def _verified_or_none(self, token: str) -> VerifiedToken | None:
        try:
            verified = await self._verifier.verify(token)
        except Unauthenticated:
            return None
        return verified if verified.issuer == self.config.issuer else None

    async def _exchange(self, client_id: str, subject_token: str) -> Person:
        return await self._assertions.verify(client_id, subject_token)

    async def _revoke(self, token: VerifiedToken) -> None:
        await self._denylist.revoke(token.issuer, token.token_id, token.expires_at)


def _unavailable(endpoint: str, exc: Exception, description: str) -> Response:
    """A dependency outage at an OAuth endpoint: 503 and Retry-After, one log line."""
    log.warning("%s endpoint: dependency unavailable (%s)", endpoint, type(exc).__name__)
    response = oauth_error(503, "temporarily_unavailable", description)
    response.headers["retry-after"] = str(Unavailable.retry_after)
    return response


def _bearer_token(authorization: str | None, max_bytes: int) -> str:
    if not authorization:
        raise Unauthenticated("missing Authorization header")
    if len(authorization) > max_bytes + 16:
        raise Unauthenticated("token too large")
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise Unauthenticated("malformed Authorization header")
    return token


def _change(what: str, before: object, after: object) -> str:
    """What an auditor reads in a `client_changed` record: `scopes: +card:read -card:status`
    for a list (what was added and removed, short enough for the record), `enabled: yes -> no`
    for a flag."""
    if isinstance(before, bool) and isinstance(after, bool):
        return f"{what}: {'yes' if before else 'no'} -> {'yes' if after else 'no'}"
    assert isinstance(before, (frozenset, tuple)) and isinstance(after, (frozenset, tuple))
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    diff = " ".join([*(f"+{x}" for x in added), *(f"-{x}" for x in removed)])
    return f"{what}: {diff or 'unchanged'}"


def _claims(verified: VerifiedToken, client: Client | None, hub_issuer: str) -> TokenClaims:
    expected_issuer = None if verified.issuer == hub_issuer else verified.issuer
    if client is None or client.external_issuer != expected_issuer:
        raise Unauthenticated("unknown client")
    if not client.enabled:
        raise Unauthenticated(
            "client disabled", client_id=client.client_id, reason="CLIENT_DISABLED"
        )
    if verified.agency_claim is not None and verified.agency_claim != client.agency:
        raise Unauthenticated("agency does not match the registered client")
    scopes = verified.scopes & client.scopes
    # A person's token carries person scopes only; anyone else's never does.
    person_token = verified.actor_kind == "SUBJECT"
    scopes = scopes & PERSON_SCOPES if person_token else scopes - PERSON_SCOPES
    return TokenClaims(
        client_id=client.client_id,
        agency=client.agency,
        scopes=scopes,
        purposes=client.purposes,
        token_id=verified.token_id,
        expires_at=verified.expires_at,
        issuer=verified.issuer,
        embargoed_until=client.embargoed_until,
        jurisdiction=client.jurisdiction,
        actor=verified.actor,
        actor_kind=verified.actor_kind,
        purpose_operations=client.purpose_operations,
        officer_purposes=client.officer_purposes,
    )


def _address(request: Request) -> str:
    """The ASGI client address (a trusted proxy's forwarded one, once the hub resolves it)."""
    return request.client.host if request.client is not None else "unknown"


def _throttled_event(answer: Answer, endpoint: str) -> AuthEvent:
    assert answer.throttled is not None
    detail = f"endpoint={endpoint} by={answer.throttled.by}"
    return AuthEvent("client_throttled", answer.claimed, "failure", "invalid_client", detail,
                     answer.address)


def _revocation_refusal(request: TokenRequest, answer: Answer) -> AuthEvent | None:
    if answer.throttled is not None:
        return _throttled_event(answer, "revoke")
    if answer.status == 401:
        return AuthEvent("revocation_refused", answer.claimed, "failure", "invalid_client",
                         "client authentication failed", answer.address)
    if request.foreign_token:
        client_id = request.client.get_client_id() if request.client else None
        return AuthEvent("revocation_refused", client_id, "failure", "invalid_grant",
                         "token of another client", answer.address)
    return None


def _token_event(request: TokenRequest, answer: Answer) -> AuthEvent:
    if answer.throttled is not None:
        return _throttled_event(answer, "token")
    status, body = answer.status, answer.body
    if status == 200:
        client_id = request.client.get_client_id() if request.client else None
        detail = f"method={request.auth_method} scope={body.get('scope', '')}"
        if request.person is not None:
            person = request.person
            detail += f" grant=token-exchange {person.kind.lower()}={person.subject}"
        return AuthEvent("token_issued", client_id, "success", detail=detail,
                         address=answer.address)
    error = body.get("error") if isinstance(body, dict) else None
    return AuthEvent("token_refused", answer.claimed, "failure", error, str(error),
                     answer.address)
