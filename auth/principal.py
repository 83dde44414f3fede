"""The caller as the token says (`TokenClaims`) and as every later step sees it (`Principal`).

A `TokenClaims` is what the token and registry checks give: signature, issuer, audience, expiry,
client registered and enabled. It is NOT yet an authenticated caller: the token may have been
revoked or its client disabled on another instance. Only the revocation check turns it into a
`Principal` (`AuthService.authenticate`, or `AuthService.judge_revocation` for the request path,
which judges it on this instance's replica of the denylist, after the purpose). A step that acts
for the caller takes a `Principal`, so mypy refuses a caller whose revocation was not checked.
Never: construct a `Principal` anywhere but in `checked` (called by the revocation judge).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import date
from typing import Literal

__all__ = ["ActorKind", "Principal", "TokenClaims"]

# Who is behind a request: the client system itself, an agency's officer, or the foreigner
# whose own data an app reads (the last two only in tokens from a token exchange).
ActorKind = Literal["SYSTEM", "OFFICER", "SUBJECT"]


@dataclass(frozen=True)
class TokenClaims:
    """Who the token says is calling, for which agency, with which scopes and purposes.

    `scopes` are the token's scopes capped by the client's current registration, so that
    narrowing a client's scopes takes effect at once on tokens already issued.
    """

    client_id: str
    agency: str
    scopes: frozenset[str]
    purposes: frozenset[str]
    token_id: str
    expires_at: int
    issuer: str
    embargoed_until: date | None = None
    # The client's registered region prefixes, read with its registration like `purposes`;
    # empty (no rows) unless the registry says otherwise, so a forgotten copy denies.
    jurisdiction: tuple[str, ...] = ()
    # The person the token names (its `sub`) when it came from a token exchange, with what
    # kind of person that is; a client-credentials token names none and is the SYSTEM's.
    actor: str | None = None
    actor_kind: ActorKind = "SYSTEM"
    # The root fields each of its purposes covers, read with its registration like `purposes`
    # (a change reaches tokens already issued); a purpose missing here covers nothing.
    purpose_operations: Mapping[str, frozenset[str]] = field(default_factory=dict, hash=False)
    # Its purposes whose requests must name the officer acting (an OFFICER token and a case).
    officer_purposes: frozenset[str] = frozenset()

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes

    def operations_of(self, purpose: str) -> frozenset[str]:
        """The root fields a request made for `purpose` may run (none if it covers none)."""
        return self.purpose_operations.get(purpose, frozenset())


@dataclass(frozen=True)
class Principal(TokenClaims):
    """Token claims whose revocation and client-disable status were checked: the caller."""


def checked(claims: TokenClaims) -> Principal:
    """The principal of `claims`, once the revocation judge found them not revoked.

    Every field of the claims is carried over, so a claim added to `TokenClaims` cannot be
    dropped here by a list that forgot it."""
    return Principal(**{name: getattr(claims, name) for name in _CLAIM_NAMES})


_CLAIM_NAMES = tuple(f.name for f in fields(TokenClaims))  # once, not per request
