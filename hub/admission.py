"""The admission checks a GraphQL request and a GraphQL subscription share, written once.

`graphql_post` (hub.routes) and each `subscribe` message (hub.subscriptions) read their input
with `graphql_request_of` and make the checks every instance shares through Redis (revocation,
request rate, cost budget) with `shared_checks`, so that neither door admits what the other
refuses. Never: decide here how a refusal is rendered (HTTP response or WebSocket message);
that belongs to each door.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from auth import AuthError, Principal
from auth.errors import Unavailable
from hub.components import Hub
from infra.kv import KeyValueUnavailable
from schema import GraphQLRequest

__all__ = ["BadRequest", "Shared", "graphql_request_of", "shared_checks"]

log = logging.getLogger("hub.routes")  # the request path's log, whichever door


class BadRequest(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def graphql_request_of(payload: dict[str, Any], query: str | None) -> GraphQLRequest:
    """`query` is the document to run: sent, or resolved from a trusted document id."""
    variables, operation = payload.get("variables"), payload.get("operationName")
    if not isinstance(query, str) or not query.strip():
        raise BadRequest("`query` must be a non-empty string")
    if variables is not None and not isinstance(variables, dict):
        raise BadRequest("`variables` must be an object")
    if operation is not None and not isinstance(operation, str):
        raise BadRequest("`operationName` must be a string")
    return GraphQLRequest(query=query, variables=variables, operation_name=operation)


@dataclass(frozen=True, slots=True)
class Shared:
    """What the shared store said: a revocation refusal, else seconds to wait (None: allowed)."""

    revoked: AuthError | None = None
    rate_retry_after: int | None = None
    cost_retry_after: int | None = None
    read: list[bytes | None] = field(default_factory=list)  # the values of `reads`


async def shared_checks(
    hub: Hub, principal: Principal, *, rate: bool, cost: int | None, reads: Sequence[str] = ()
) -> Shared:
    """Revocation, the request rate (if `rate`) and the cost budget (if a cost), one round trip.

    `reads`: more keys to read in that round trip (the request's permit cache entries).

    Revocation fails CLOSED when Redis is down: 503 with Retry-After (the caller should retry,
    not fetch a new token), audited, no data. The rate and the budget would fail open (the
    static limits still hold, and refusing every request for want of a counter would turn a
    cache outage into a hub outage), but they are read together, so a request never gets that
    far without its revocation status.
    """
    now = hub.rate_limit.clock()  # injected: tests pick their window rather than wait
    counts = [hub.rate_limit.count(principal.client_id, 1, now)] if rate else []
    if cost is not None:
        counts.append(hub.cost_budget.count(principal.client_id, cost, now))
    revocation = hub.auth.revocation_keys(principal)
    try:
        values, spent = await hub.kv.read_and_count([*revocation, *reads], counts)
    except KeyValueUnavailable as exc:
        log.warning("shared store unavailable (%s); revocation unknown, request refused", exc)
        return Shared(revoked=Unavailable("revocation status unavailable"))
    try:
        await hub.auth.judge_revocation(principal, values[: len(revocation)])
    except AuthError as exc:
        return Shared(revoked=exc)
    totals = iter(spent)
    rate_decision = hub.rate_limit.decide(next(totals), now) if rate else None
    cost_decision = hub.cost_budget.decide(next(totals), now) if cost is not None else None
    return Shared(
        rate_retry_after=(
            rate_decision.retry_after if rate_decision and not rate_decision.allowed else None
        ),
        cost_retry_after=(
            cost_decision.retry_after if cost_decision and not cost_decision.allowed else None
        ),
        read=values[len(revocation) :],
    )
