"""Errors of the auth package.

    AuthError                      code, status, OAuth `error`, safe `description`
    ├── Unauthenticated            401 UNAUTHENTICATED / invalid_token
    │   └── InvalidClient          401 UNAUTHENTICATED / invalid_client
    ├── PurposeRequired            403 PURPOSE_REQUIRED / invalid_request
    ├── Forbidden                  403 FORBIDDEN / insufficient_scope
    ├── RegistryError              400 BAD_USER_INPUT / invalid_request
    │   ├── UnknownClient          404 BAD_USER_INPUT / invalid_request
    │   └── UnknownPurpose         404 BAD_USER_INPUT / invalid_request
    └── Unavailable                503 UPSTREAM_UNAVAILABLE / temporarily_unavailable

A description never contains a token, a secret or a key: it is safe to show the caller and
to write to the audit log. The hub maps `code` to GraphQL `extensions.code` in one place.
"""

from __future__ import annotations

__all__ = [
    "AuthError",
    "Forbidden",
    "InvalidClient",
    "PurposeRequired",
    "RegistryError",
    "Unauthenticated",
    "Unavailable",
    "UnknownClient",
    "UnknownPurpose",
]


class AuthError(Exception):
    """Base of every error auth raises."""

    code: str = "UNAUTHENTICATED"
    status: int = 401
    error: str = "invalid_token"

    def __init__(
        self, description: str, *, client_id: str | None = None, reason: str | None = None
    ) -> None:
        super().__init__(description)
        self.description = description
        # The client a verified (well-signed) token names, when the refusal is about it, so
        # the audit record says whose request was refused; never a claimed, unverified id.
        self.client_id = client_id
        # Why, as a code an auditor can filter on (CLIENT_DISABLED, TOKEN_REVOKED).
        self.reason = reason

    def www_authenticate(self) -> str:
        """The RFC 6750 challenge for this error, for a 401 response."""
        safe = self.description.replace("\\", "").replace('"', "'")
        return f'Bearer error="{self.error}", error_description="{safe}"'


class Unauthenticated(AuthError):
    """The bearer token is missing, malformed, forged, expired, revoked or not ours."""


class InvalidClient(Unauthenticated):
    """The client is unknown, disabled or failed to authenticate."""

    error = "invalid_client"


class PurposeRequired(AuthError):
    """X-Purpose-Of-Use is missing or names a purpose the client is not registered for.

    `allowed`: the purposes the client is registered for (its own, safe to tell it)."""

    code = "PURPOSE_REQUIRED"
    status = 403
    error = "invalid_request"

    def __init__(self, description: str, allowed: tuple[str, ...] = ()) -> None:
        super().__init__(description)
        self.allowed = allowed


class OfficerRequired(AuthError):
    """The purpose's requests must name the officer acting: an officer's exchanged token."""

    code = "OFFICER_REQUIRED"
    status = 403
    error = "invalid_request"


class CaseReferenceRequired(AuthError):
    """`X-Case-Reference` is missing where the purpose needs one, or is not a case reference."""

    code = "CASE_REFERENCE_REQUIRED"
    status = 403  # access refused for want of a case, recorded DENIED like an officer's
    error = "invalid_request"


class Forbidden(AuthError):
    """The caller is authenticated but lacks the scope for what it asked."""

    code = "FORBIDDEN"
    status = 403
    error = "insufficient_scope"


class RegistryError(AuthError):
    """A client registration was refused (unknown scope, bad purpose, bad key, ...)."""

    code = "BAD_USER_INPUT"
    status = 400
    error = "invalid_request"


class UnknownClient(RegistryError):
    """No client is registered under that id."""

    status = 404


class UnknownPurpose(RegistryError):
    """No purpose is registered under that name."""

    status = 404


class Unavailable(AuthError):
    """The hub database or the shared store could not answer: retry, do not fetch a new token.

    Fails closed: the request is refused (no data), but it is not the caller's fault.
    """

    code = "UPSTREAM_UNAVAILABLE"
    status = 503
    error = "temporarily_unavailable"
    retry_after = 1  # seconds, for the Retry-After header
