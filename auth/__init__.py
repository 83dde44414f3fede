"""Authentication and authorization for the hub: the token and purpose steps of the request path.

Offers: an OAuth 2.0 authorization server (client credentials and RFC 8693 token exchange;
client_secret_basic, client_secret_post, private_key_jwt; RFC 9068 JWT access tokens; RFC 7009
revocation; JWKS and RFC 8414 metadata), the resource-server check that turns a bearer token
into a `Principal`, the client registry and the identity providers trusted for each client, the
signing-key ring with rotation, and the purpose-of-use check.
The hub builds one `AuthService` from an `AuthConfig` and wires `routes()` and
`authenticate()` into its request path (docs/architecture.md). Auth imports neither `hub` nor
`schema`; the import contracts in pyproject.toml hold it to that.
"""

from auth.clients import Client
from auth.config import AuthConfig, TrustedIssuer
from auth.errors import (
    AuthError,
    Forbidden,
    InvalidClient,
    PurposeRequired,
    RegistryError,
    Unauthenticated,
    UnknownClient,
)
from auth.events import AuthEvent
from auth.models import auth_metadata
from auth.principal import Principal, TokenClaims
from auth.purpose import CASE_HEADER, PURPOSE_HEADER, case_reference_of, purpose_of_use
from auth.scopes import SCOPES
from auth.service import AuthService

__all__ = [
    "CASE_HEADER",
    "PURPOSE_HEADER",
    "SCOPES",
    "AuthConfig",
    "AuthError",
    "AuthEvent",
    "AuthService",
    "Client",
    "Forbidden",
    "InvalidClient",
    "Principal",
    "PurposeRequired",
    "RegistryError",
    "TokenClaims",
    "TrustedIssuer",
    "Unauthenticated",
    "UnknownClient",
    "auth_metadata",
    "case_reference_of",
    "purpose_of_use",
]
