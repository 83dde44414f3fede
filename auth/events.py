"""Security events auth reports to the hub, which writes them to the audit log.

An event never carries a secret, a token or a private key: only ids, outcomes and a safe detail.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

__all__ = ["AuthEvent", "EventKind", "EventSink"]

EventKind = Literal[
    "token_issued", "token_refused", "token_revoked", "client_changed", "key_rotated"
]


@dataclass(frozen=True)
class AuthEvent:
    """One security-relevant thing that happened.

    For `token_refused`, `client_id` is the id the caller *claimed* (it may not exist).
    """

    kind: EventKind
    client_id: str | None
    outcome: Literal["success", "failure"]
    error_code: str | None = None
    detail: str = ""


EventSink = Callable[[AuthEvent], Awaitable[None]]
