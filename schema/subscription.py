"""The subscription root: permit changes as the WMS reports them, over graphql-transport-ws.

The resolver only filters the process's event stream (`Sources.events`, fed by the event bus
from every hub instance) and wraps each change; authentication, scope, purpose and the audit
record of every event sent belong to the WebSocket endpoint (`hub.subscriptions`).

Events are national for an agency (an event is validity information). For a person's token
(`self:subscribe`, `schema.person`) they are rows like any other: `numbers` naming a permit
not theirs is refused as out of jurisdiction before the stream starts (`schema.rows`), and
without `numbers` only their own permits' events are delivered.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry

from connectors.events import EventBus
from schema.rows import OutOfJurisdiction, refuses_permits
from schema.types import Ctx, PermitEvent

__all__ = ["Subscription"]


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="Renewals, alterations, cancellations and revocations as they happen; "
        "only those of `numbers` if given. Each event carries the permit's status after it."
    )
    async def permit_status_changed(
        self, info: Ctx, numbers: list[strawberry.ID] | None = None
    ) -> AsyncGenerator[PermitEvent, None]:
        # Not a generator itself: its refusals come before the stream, not at its first event.
        bus = info.context.sources.events
        if bus is None:
            raise RuntimeError("this hub has no event bus")
        asked = [str(n) for n in numbers] if numbers is not None else None
        if asked is not None and refuses_permits(info, asked):
            raise OutOfJurisdiction
        wanted = frozenset(asked) if asked is not None else None
        guard = info.context.rows
        if wanted is None and guard is not None and guard.binds_everything:
            wanted = frozenset(guard.own_permits)
        return _changes(info, bus, wanted)


async def _changes(
    info: Ctx, bus: EventBus, wanted: frozenset[str] | None
) -> AsyncGenerator[PermitEvent, None]:
    async for change in bus.subscribe():
        if wanted is None or change.permit_number in wanted:
            info.context.touched.permits.add(change.permit_number)
            yield PermitEvent.of(change.as_history_event())
