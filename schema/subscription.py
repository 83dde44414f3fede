"""The subscription root: permit changes as the WMS reports them, over graphql-transport-ws.

The resolver only filters the process's event stream (`Sources.events`, fed by the event bus
from every hub instance) and wraps each change; authentication, scope, purpose and the audit
record of every event sent belong to the WebSocket endpoint (`hub.subscriptions`).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry

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
        bus = info.context.sources.events
        if bus is None:
            raise RuntimeError("this hub has no event bus")
        wanted = frozenset(str(n) for n in numbers) if numbers is not None else None
        async for change in bus.subscribe():
            if wanted is None or change.permit_number in wanted:
                info.context.touched.permits.add(change.permit_number)
                yield PermitEvent.of(change.as_history_event())
