"""The authorization server: authlib's OAuth 2.0 machinery adapted to Starlette and asyncio.

authlib's server classes are synchronous and have no Starlette integration, so each request is
adapted the way authlib's Flask integration does it (an `OAuth2Request` subclass over the form
that was read asynchronously), and authlib then runs in a worker thread. Whenever authlib needs
data (a client, a jti replay check, a revocation) the worker calls back into the event loop with
`anyio.from_thread.run`, so database and Redis stay async and argon2 verification (slow on
purpose) runs in the worker, never on the event loop.

authlib pieces used: `AuthorizationServer`, `ClientCredentialsGrant` (client_secret_basic,
client_secret_post and private_key_jwt), a token-exchange grant on authlib's `BaseGrant` and
`TokenEndpointMixin` (RFC 8693; the assertion checks are `auth.exchange`'s),
`JWTBearerClientAssertion` (RFC 7523 private_key_jwt), `RevocationEndpoint` (RFC 7009) and the
RFC 9068 token generator (`auth.tokens`).

Never: log or echo a secret or a token; let a malformed request reach a 500; look up in the
database a client id the registry could never hold.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

import anyio
import anyio.from_thread
import anyio.to_thread
from authlib.oauth2.rfc6749 import (
    AuthorizationServer,
    ClientMixin,
    InvalidClientError,
    InvalidRequestError,
    InvalidScopeError,
    OAuth2Error,
    OAuth2Request,
)
from authlib.oauth2.rfc6749.grants import ClientCredentialsGrant
from authlib.oauth2.rfc6749.grants.base import BaseGrant, TokenEndpointMixin
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from authlib.oauth2.rfc6749.util import extract_basic_authorization, scope_to_list
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from auth import _passwords
from auth.clients import Client, valid_client_id
from auth.config import ASYMMETRIC_ALGORITHMS, AuthConfig
from auth.exchange import (
    ACCESS_TOKEN_TYPE,
    JWT_TOKEN_TYPE,
    TOKEN_EXCHANGE,
    ExchangeRefused,
    Person,
)
from auth.scopes import PERSON_SCOPES, SCOPES
from auth.tokens import HubTokenGenerator, TokenSubject, VerifiedToken
from infra import forms

__all__ = [
    "AUTH_METHODS", "BadCredentials", "Bridge", "OAuthClient", "OAuthServer", "TokenRequest"
]

AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt"]
_MAX_FORM_BYTES = 64 * 1024
_MAX_ASSERTION_LIFETIME = 3600  # authlib's own client signs assertions for an hour


class Bridge:
    """The async operations authlib needs, callable from its worker thread."""

    def __init__(
        self,
        client: Callable[[str], Coroutine[Any, Any, Client | None]],
        first_use: Callable[[str, float], Coroutine[Any, Any, bool]],
        verified: Callable[[str], Coroutine[Any, Any, VerifiedToken | None]],
        revoke: Callable[[VerifiedToken], Coroutine[Any, Any, None]],
        exchange: Callable[[str, str], Coroutine[Any, Any, Person]],
    ) -> None:
        self.client = client
        self.first_use = first_use
        self.verified = verified
        self.revoke = revoke
        self.exchange = exchange  # (client id, subject token) → Person, or ExchangeRefused


class OAuthClient(ClientMixin):
    """authlib's view of a registry client; `None` stands for an unknown (claimed) id."""

    def __init__(
        self, client_id: str, client: Client | None, hasher: _passwords.SecretHasher
    ) -> None:
        self.client_id = client_id
        self.client = client
        self._hasher = hasher
        self.live = client is not None and client.enabled

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> None:
        return None

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return False

    def check_response_type(self, response_type: str) -> bool:
        return False

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "client_credentials"

    def get_allowed_scope(self, scope: str | None) -> str | None:
        # Person scopes only ever go into a token naming the person (the exchange grant).
        allowed = self.client.scopes - PERSON_SCOPES if self.client else frozenset()
        requested = scope_to_list(scope) or sorted(allowed)
        if not requested or not set(requested) <= allowed:
            return None
        return " ".join(dict.fromkeys(requested))

    def check_client_secret(self, client_secret: str) -> bool:
        # Unknown, disabled and key-only clients still pay one argon2 verification.
        secret_hash = self.client.secret_hash if self.client else None
        return self._hasher.verify(secret_hash, client_secret) and self.live

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if not self.live or self.client is None:
            return False
        if method == "private_key_jwt":
            return self.client.public_jwks is not None
        return method in AUTH_METHODS and self.client.secret_hash is not None


class BadCredentials(Exception):
    """The Authorization header claims Basic credentials that are not UTF-8 text."""


class TokenRequest(OAuth2Request):
    """An OAuth2Request over a Starlette request whose form was read beforehand."""

    def __init__(self, uri: str, headers: Headers, form: dict[str, str]) -> None:
        super().__init__("POST", uri, headers=headers)
        self._form = form
        self.payload = BasicOAuth2Payload(form)
        self.revoked: VerifiedToken | None = None
        self.foreign_token = False  # a revocation request named another client's token
        self.person: Person | None = None  # whom an exchanged token names, once issued

    @property
    def form(self) -> dict[str, str]:
        return self._form

    @property
    def args(self) -> dict[str, str]:
        return {}

    @property
    def hashes_secret(self) -> bool:
        """Whether authenticating this request may verify a client secret (argon2)."""
        return "client_assertion" not in self._form or self.auth_mechanisms() > 1

    def auth_mechanisms(self) -> int:
        """How many client authentication methods the request uses (RFC 6749 allows one;
        authlib would try each in turn, hashing a secret for each that carries one)."""
        basic = self.headers.get("authorization", "").split(" ")[0].lower() == "basic"
        return basic + ("client_secret" in self._form) + ("client_assertion" in self._form)

    def claimed_client_id(self) -> str | None:
        """The client id the request claims, before anything is verified.

        Raises BadCredentials for Basic credentials that are not UTF-8 (authlib would raise
        UnicodeDecodeError from deep inside client authentication).
        """
        try:
            basic_id, _ = extract_basic_authorization(self.headers)
        except UnicodeDecodeError:
            raise BadCredentials("malformed client credentials") from None
        claimed = basic_id or self._form.get("client_id") or self._assertion_subject()
        return claimed[:256] if claimed else None

    def _assertion_subject(self) -> str | None:
        """The unverified `sub` of a client assertion: authlib looks the client up by it."""
        assertion = self._form.get("client_assertion")
        if not assertion:
            return None
        try:
            claims = json.loads(jws.extract_compact(assertion.encode("ascii")).payload)
        except (JoseError, ValueError, UnicodeError):
            return None
        subject = claims.get("sub") if isinstance(claims, dict) else None
        return subject if isinstance(subject, str) else None


class _PrivateKeyJWT(JWTBearerClientAssertion):
    """RFC 7523 client authentication with the agency's registered public key."""

    CLIENT_AUTH_METHOD = "private_key_jwt"

    def __init__(self, config: AuthConfig, bridge: Bridge) -> None:
        super().__init__(validate_jti=True, leeway=config.leeway_seconds)
        self._audiences = [config.token_endpoint, config.url("/oauth/revoke"), config.issuer]
        self._bridge = bridge

    def get_audiences(self) -> list[str]:
        return self._audiences

    def resolve_client_public_key(self, client: OAuthClient) -> KeySet:
        if not client.live or client.client is None or client.client.public_jwks is None:
            raise InvalidClientError(status_code=401, description="client authentication failed")
        return KeySet.import_key_set(dict(client.client.public_jwks))  # type: ignore[arg-type]

    def process_assertion_claims(self, assertion: str, resolve_key: Any) -> dict[str, Any]:
        try:
            token = jwt.decode(assertion, resolve_key, algorithms=sorted(ASYMMETRIC_ALGORITHMS))
            self.verify_claims(token.claims)
        except (JoseError, InvalidClientError, ValueError):
            raise InvalidClientError(
                status_code=401, description="invalid client assertion"
            ) from None
        return token.claims

    def validate_jti(self, claims: dict[str, Any], jti: object) -> bool:
        exp = claims.get("exp")
        if not isinstance(jti, str) or not isinstance(exp, int | float):
            return False
        # Without `iat` the lifetime is unknown: an assertion valid for a year would pass.
        iat = claims.get("iat")
        if not isinstance(iat, int | float) or exp - iat > _MAX_ASSERTION_LIFETIME:
            return False
        key = f"{claims['sub']}\n{jti}"
        return bool(anyio.from_thread.run(self._bridge.first_use, key, float(exp)))


class _ClientCredentialsGrant(ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS


class _ActingClient:
    """The client as the token generator sees it in an exchange: its scope already decided."""

    def __init__(self, client_id: str, scope: str) -> None:
        self._client_id = client_id
        self._scope = scope

    def get_client_id(self) -> str:
        return self._client_id

    def get_allowed_scope(self, scope: str | None) -> str | None:
        return self._scope if scope == self._scope else None


def _refusal(exc: ExchangeRefused) -> OAuth2Error:
    return OAuth2Error(description=exc.description, status_code=400, error=exc.error)


class _TokenExchangeGrant(BaseGrant, TokenEndpointMixin):
    """RFC 8693 token exchange: an authenticated client trades a person's assertion from one
    of its identity providers for a short-lived hub token naming that person (`auth.exchange`).
    """

    GRANT_TYPE = TOKEN_EXCHANGE
    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS
    server: OAuthServer
    request: TokenRequest

    def validate_token_request(self) -> None:
        client: OAuthClient = self.authenticate_token_endpoint_client()
        self.request.client = client
        assert client.client is not None  # authenticated, so registered
        form = self.request.form
        self._check_parameters(form)
        self.validate_requested_scope()
        try:
            person = anyio.from_thread.run(
                self.server.bridge.exchange, client.client_id, form["subject_token"]
            )
        except ExchangeRefused as exc:
            raise _refusal(exc) from None
        allowed = client.client.scopes & person.scopes
        if not allowed:
            raise InvalidScopeError("the asserted roles open none of this client's scopes")
        requested = scope_to_list(self.request.payload.scope) or sorted(allowed)
        if not set(requested) <= allowed:
            raise InvalidScopeError("scope beyond what the asserted roles open")
        # Last, so that a request refused for another reason does not use up the assertion.
        key = f"subject\n{person.issuer}\n{person.jti}"
        if not anyio.from_thread.run(self.server.bridge.first_use, key, person.expires_at):
            raise InvalidRequestError("subject token already used")
        self.person = person
        self.scope = " ".join(dict.fromkeys(requested))

    def _check_parameters(self, form: dict[str, str]) -> None:
        if not form.get("subject_token"):
            raise InvalidRequestError("subject_token is required")
        if form.get("subject_token_type") != JWT_TOKEN_TYPE:
            raise InvalidRequestError(f"subject_token_type must be {JWT_TOKEN_TYPE}")
        if "actor_token" in form or "actor_token_type" in form:
            raise InvalidRequestError("no actor_token: the authenticated client is the actor")
        if form.get("requested_token_type", ACCESS_TOKEN_TYPE) != ACCESS_TOKEN_TYPE:
            raise InvalidRequestError(f"requested_token_type: only {ACCESS_TOKEN_TYPE}")
        for name in ("audience", "resource"):
            if name in form and form[name] not in self.server.targets:
                raise OAuth2Error(
                    description=f"{name}: the hub issues tokens for itself only",
                    status_code=400, error="invalid_target",
                )

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        person: Person = self.person
        token: dict[str, Any] = self.server.generate_token(
            client=_ActingClient(self.request.client.get_client_id(), self.scope),
            grant_type=TOKEN_EXCHANGE,
            user=TokenSubject(person.subject, person.kind),
            scope=self.scope,
            include_refresh_token=False,
        )
        token["issued_token_type"] = ACCESS_TOKEN_TYPE
        self.request.person = person
        return 200, token, self.TOKEN_RESPONSE_HEADER


class _RevokedToken:
    def __init__(self, token: VerifiedToken) -> None:
        self.token = token

    def check_client(self, client: OAuthClient) -> bool:
        return client.get_client_id() == self.token.client_id


class _Revocation(RevocationEndpoint):
    CLIENT_AUTH_METHODS = AUTH_METHODS

    def __init__(self, server: OAuthServer, bridge: Bridge) -> None:
        super().__init__(server)
        self._bridge = bridge

    def query_token(self, token_string: str, token_type_hint: str | None) -> _RevokedToken | None:
        token = anyio.from_thread.run(self._bridge.verified, token_string)
        return _RevokedToken(token) if token is not None else None

    def authenticate_token(
        self, request: TokenRequest, client: OAuthClient
    ) -> _RevokedToken | None:
        """Another client's token is left alone and answered as junk is (200, empty body):
        authlib's `invalid_grant` would tell the caller that the token is valid."""
        self.check_params(request, client)
        token = self.query_token(request.form["token"], request.form.get("token_type_hint"))
        if token is not None and not token.check_client(client):
            request.foreign_token = True
            return None
        return token

    def revoke_token(self, token: _RevokedToken, request: TokenRequest) -> None:
        anyio.from_thread.run(self._bridge.revoke, token.token)
        request.revoked = token.token


class OAuthServer(AuthorizationServer):
    """authlib's AuthorizationServer for the client-credentials grant, answering tuples."""

    def __init__(
        self,
        config: AuthConfig,
        generator: HubTokenGenerator,
        bridge: Bridge,
        hasher: _passwords.SecretHasher,
    ) -> None:
        super().__init__(scopes_supported=sorted(SCOPES))
        self.bridge = bridge
        self._hasher = hasher
        # What an exchange's `audience` or `resource` may name: the hub, nothing else.
        self.targets = frozenset({config.issuer, config.audience, config.url("/graphql")})
        self.register_token_generator("default", generator)
        self.register_grant(_ClientCredentialsGrant)
        self.register_grant(_TokenExchangeGrant)
        self.register_client_auth_method("private_key_jwt", _PrivateKeyJWT(config, bridge))
        self.register_endpoint(_Revocation(self, bridge))

    def query_client(self, client_id: str) -> OAuthClient:
        if not valid_client_id(client_id):
            return OAuthClient(client_id, None, self._hasher)  # never sent to the database
        client = anyio.from_thread.run(self.bridge.client, client_id)
        return OAuthClient(client_id, client, self._hasher)

    def save_token(self, token: dict[str, Any], request: TokenRequest) -> None:
        """JWT access tokens are self-contained: nothing to store."""

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        """Events are emitted by the routes, after the response is known."""

    def create_oauth2_request(self, request: TokenRequest) -> TokenRequest:
        return request

    def handle_response(
        self, status: int, body: Any, headers: list[tuple[str, str]]
    ) -> tuple[int, Any, list[tuple[str, str]]]:
        return status, body, headers

    def handle_error_response(
        self, request: TokenRequest, error: OAuth2Error
    ) -> tuple[int, Any, list[tuple[str, str]]]:
        if isinstance(error, InvalidClientError):
            error.status_code = 401  # RFC 6749 5.2 allows it; the hub promises it
            if (error.description or "").startswith("The client cannot authenticate"):
                # authlib's words list every method it tried; the caller needs to know what
                # to check. Which of the three it was is not said: that would tell a stranger
                # which client ids exist.
                error.description = _AUTHENTICATION_FAILED
        elif isinstance(error, InvalidScopeError) and (
            request.form.get("grant_type") == "client_credentials"
        ):  # authlib's own words; a token exchange says which roles fell short itself
            error.description = _scope_refusal(request)
        return self.handle_response(*error(None))

    def refuse_client(self, request: TokenRequest, description: str) -> tuple[int, Any, list]:
        """The `invalid_client` answer authlib gives, for a refusal decided before it runs."""
        return self.handle_error_response(
            request, InvalidClientError(status_code=401, description=description)
        )

    def refuse_request(self, request: TokenRequest, description: str) -> tuple[int, Any, list]:
        return self.handle_error_response(request, InvalidRequestError(description=description))


_AUTHENTICATION_FAILED = (
    "client authentication failed: unknown client id, wrong secret or key, or a disabled client"
)


def _scope_refusal(request: TokenRequest) -> str:
    """Name the scopes refused, and what the (authenticated) client may ask for instead."""
    holder = request.client if isinstance(request.client, OAuthClient) else None
    client = holder.client if holder is not None else None
    allowed = client.scopes if client is not None else frozenset()
    asked = scope_to_list(request.form.get("scope")) or []
    refused = [scope for scope in dict.fromkeys(asked) if scope not in allowed]
    if not refused:
        return "this client has no scope to ask for"
    unknown = [scope for scope in refused if scope not in SCOPES]
    shown = ", ".join(_printable(scope) for scope in refused[:10])
    kind = "unknown scope" if len(unknown) == len(refused) else "scope not granted to this client"
    return f"{kind}: {shown} (it may ask for: {' '.join(sorted(allowed)) or 'nothing'})"


def _printable(scope: str) -> str:
    """A requested scope, shown back bounded and printable (it is the caller's own text)."""
    text = "".join(c if c.isprintable() else "?" for c in scope[:64])
    return text + ("…" if len(scope) > 64 else "")


async def read_form(request: Request) -> dict[str, str]:
    """An OAuth endpoint's form (RFC 6749 section 3.2: urlencoded, each parameter once)."""
    return await forms.read_form(request, max_bytes=_MAX_FORM_BYTES, max_fields=32)


def oauth_response(status: int, body: Any, headers: list[tuple[str, str]]) -> Response:
    response = JSONResponse(body, status_code=status)
    for name, value in headers:
        if name.lower() != "content-type":
            response.headers[name] = value
    return response


def oauth_error(status: int, error: str, description: str) -> Response:
    body = {"error": error, "error_description": description}
    return JSONResponse(body, status_code=status, headers={"Cache-Control": "no-store"})


async def run_token_endpoint(server: OAuthServer, request: TokenRequest) -> tuple[int, Any, list]:
    result: tuple[int, Any, list] = await anyio.to_thread.run_sync(
        server.create_token_response, request
    )
    return result


async def run_revocation_endpoint(
    server: OAuthServer, request: TokenRequest
) -> tuple[int, Any, list]:
    result: tuple[int, Any, list] = await anyio.to_thread.run_sync(
        server.create_endpoint_response, "revocation", request
    )
    return result
