"""A permit's links to the other source systems: its enrollment, and the cards under its SSN.

Each answers at once when the request has already loaded it (`schema.batching.load`), else once
the load is done. `prefetch` makes the first case the usual one for a page of permits:
`Query.permits` calls it with the permits it found, and it loads the links the document
selects under them for the whole page before any item resolves, through the same DataLoaders
and in the same batches as the items' own loads would have been. Each item's fields then
resolve synchronously; a failed load still fails only the fields it serves, item by item.
"""

from __future__ import annotations

from collections.abc import Sequence

from graphql.pyutils import AwaitableOrValue
from strawberry import Info

from connectors.records import Card, Enrollment, Permit
from schema.batching import load, settle_all, then
from schema.context import HubContext
from schema.loaders import Loaders
from schema.rows import covered_agency
from schema.selection import selected

__all__ = ["cards_of", "cards_of_ssn", "enrollment_of", "prefetch"]

_LINKS = frozenset({"enrollment", "cards"})  # WorkPermit's fields served by other systems


def enrollment_of(loaders: Loaders, permit: Permit) -> AwaitableOrValue[Enrollment | None]:
    return load(loaders.enrollment_of_permit, (permit.work_location, permit.number))


def cards_of_ssn(loaders: Loaders, ssn: str | None) -> AwaitableOrValue[tuple[Card, ...]]:
    return () if ssn is None else load(loaders.cards, ssn)


def cards_of(loaders: Loaders, permit: Permit) -> AwaitableOrValue[tuple[Card, ...]]:
    return then(
        enrollment_of(loaders, permit),
        lambda enrollment: cards_of_ssn(loaders, enrollment.ssn if enrollment else None),
    )


async def prefetch(info: Info[HubContext, None], permits: Sequence[Permit]) -> None:
    """Load the links the document selects under `WorkPermit` for all of `permits` at once.

    A failed load is left for the items to raise, each at its own field; a cancelled one (the
    result of an error elsewhere in the document) for them to load again.
    """
    wanted = selected(info, "WorkPermit", _LINKS) if permits else frozenset()
    if not wanted:
        return
    loaders = info.context.loaders
    # Not at an agency whose rows this request must refuse (`WorkPermit.enrollment` refuses).
    keys = [(p.work_location, p.number) for p in permits if covered_agency(info, p.work_location)]
    enrollments = await settle_all(loaders.enrollment_of_permit, keys)
    if "cards" in wanted:
        ssns = [e.ssn for e in enrollments if isinstance(e, Enrollment)]
        await settle_all(loaders.cards, ssns)
