"""Security events auth reports to the hub, which writes them to the audit log.

An event never carries a secret, a token or a private key: only ids, outcomes and a safe detail.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

__all__ = ["AuthEvent", "EventKind", "EventSink"]

EventKind = Literal[
    "token_issued",
    "token_refused",
    "token_revoked",
    "revocation_refused",
    "client_throttled",
    "client_changed",
    "purpose_changed",
    "key_rotated",
]


@dataclass(frozen=True)
class AuthEvent:
    """One security-relevant thing that happened.

    For `token_refused`, `revocation_refused` and `client_throttled`, `client_id` is the id
    the caller *claimed* (it may not exist). `client_throttled` is an attempt refused unheard
    because of earlier failures; `revocation_refused` is a failed client authentication at the
    revocation endpoint, or a client naming another client's token (answered as if unknown).
    """

    kind: EventKind
    client_id: str | None
    outcome: Literal["success", "failure"]
    error_code: str | None = None
    detail: str = ""
    address: str | None = None  # the caller's address, for events of the OAuth endpoints
    # For `purpose_changed`: the purpose, and the root fields it covers from now on.
    purpose: str | None = None
    operations: tuple[str, ...] = ()


EventSink = Callable[[AuthEvent], Awaitable[None]]
