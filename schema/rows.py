"""Row binding: a bound field of a row outside the caller's jurisdiction is refused.

A jurisdiction is one of two kinds (`RowGuard`): an agency's regions (a row is covered when
the regions cover its region) or a person's own rows (a foreigner's token through the e-SSC
app, `self:read`: a row is covered when it is theirs, by the permit numbers and SSNs the
guard holds). Everything below is the same for both: where a row is refused, how, what the
audit record says.

The field registry (`schema.fields`) gives each field its binding; this module enforces it for
reads. A row's region (`infra.regions`): a permit's is its number's first six digits, an
enrollment's its SSN's, a card's its `region`; a foreigner is part of the row it was reached
through (its permit, or the permit number or SSN `Query.foreigner` was asked with).

Two places refuse, and both give the same answer: the row is null at its path with a
FORBIDDEN error whose `extensions.reason` is OUT_OF_JURISDICTION, the rest of the answer stands.

- Before the fetch, where the identifier tells the region (the resolvers, `refuses_*`):
  `permit(number)` and each item of `permits(numbers)` when the document selects a bound
  field of the permit; `foreigner`, `enrollment` and `cards` (every field of theirs is bound)
  by the permit number or SSN; an enrollment's `permit` by the number in the enrollment; a
  permit's `enrollment` and `cards` by the agency they are read at (its work location, whose
  SSNs all carry its region). Nothing is asked of a source system for such a row.
- After the fetch and before release, where only the record tells (`RowBoundExecutor`): every
  permit, enrollment and card graphql-core completes is checked against its record, whichever
  field reached it (a foreigner's permits and enrollments, a permit's enrollment and cards,
  an enrollment's cards, a QR check's permit, a mutation's payload).

A permit is a row whose validity is national: only the selection of one of its own bound
fields (holder, employer, details, history) binds it, so a checkpoint checks any permit's
validity. Enrollments and cards have no national field: reaching one at all binds it.

For a person every row is bound, a permit's validity included (a foreigner does not check
other people's permits): `binds_everything` makes each check below act whatever is selected.

Cost: nothing of this runs for a national client, nor for a document that selects no bound
field (`PolicyDecision.bound`, computed once per document and scope set): those run on
graphql-core's own executor with `HubContext.rows` None. Otherwise the checks are per row,
never per field. A person's request always runs on `RowBoundExecutor`, with the person's
identifiers read once before execution (`schema.person`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from graphql import GraphQLObjectType, GraphQLResolveInfo
from graphql.execution import Executor
from graphql.execution.collect_fields import FieldDetailsList
from graphql.pyutils import AwaitableOrValue, Path
from strawberry import Info

from infra.regions import NATIONAL, covers, region_of_permit, region_of_ssn
from schema.errors import Forbidden
from schema.fields import FIELDS
from schema.selection import selected

__all__ = [
    "OUT_OF_JURISDICTION",
    "REFUSED",
    "ROW_TYPES",
    "OutOfJurisdiction",
    "RowBoundExecutor",
    "RowGuard",
    "covered_agency",
    "national",
    "permit_triggers",
    "refuses_agency",
    "refuses_identifier",
    "refuses_permit",
    "refuses_permits",
]

OUT_OF_JURISDICTION: Final = "OUT_OF_JURISDICTION"


class OutOfJurisdiction(Forbidden):
    """A row of a region the client's jurisdiction does not cover. Never says which region:
    that would tell something about a row the client may not read."""

    def __init__(self) -> None:
        super().__init__(
            "this row is outside the client's jurisdiction", reason=OUT_OF_JURISDICTION
        )


@dataclass(frozen=True, slots=True)
class RowType:
    region: Callable[[Any], str]  # of the record
    subject: Callable[[Any], str]  # the identifier the audit record names
    # The fields whose selection binds the row (None: any selection, even `__typename`).
    triggers: frozenset[str] | None


# Fields of a row type that return rows of their own: they bind those rows, not this one.
_LINKS: Final = {"WorkPermit": frozenset({"enrollment", "cards"})}


def _own_bound(type_name: str) -> frozenset[str]:
    links = _LINKS.get(type_name, frozenset())
    return frozenset(
        key.partition(".")[2]
        for key, f in FIELDS.items()
        if key.startswith(type_name + ".") and f.binding == "region-of-row"
    ) - links


ROW_TYPES: Final[dict[str, RowType]] = {
    "WorkPermit": RowType(
        lambda p: region_of_permit(p.number), lambda p: p.number, _own_bound("WorkPermit")
    ),
    "Enrollment": RowType(lambda e: region_of_ssn(e.ssn), lambda e: e.ssn, None),
    "SocialSecurityCard": RowType(lambda c: c.region, lambda c: c.ssn, None),
}


def permit_triggers() -> frozenset[str]:
    """The permit fields whose selection binds a permit to the caller's jurisdiction."""
    triggers = ROW_TYPES["WorkPermit"].triggers
    assert triggers is not None
    return triggers


def national(jurisdiction: Iterable[str]) -> bool:
    return NATIONAL in jurisdiction


@dataclass(slots=True)
class RowGuard:
    """One request's jurisdiction, and the subjects it refused (for the audit record).

    Region mode (`person` None): the client's region prefixes. Person mode: the person's own
    permit numbers and SSNs (`own`); no region is covered as such, only their rows."""

    jurisdiction: tuple[str, ...]
    refused: set[str] = field(default_factory=set)
    person: str | None = None
    own: frozenset[str] = frozenset()  # the person's permit numbers and SSNs
    own_permits: tuple[str, ...] = ()  # the permit numbers alone, sorted

    @classmethod
    def of_person(cls, person: str, permits: Iterable[str], ssns: Iterable[str]) -> RowGuard:
        numbers = tuple(sorted(set(permits)))
        return cls((), person=person, own=frozenset((*numbers, *ssns)), own_permits=numbers)

    @property
    def binds_everything(self) -> bool:
        """Every row is bound, whatever of it is selected (a person's guard)."""
        return self.person is not None

    def covers(self, region: str) -> bool:
        return self.person is None and covers(self.jurisdiction, region)

    def covers_permit(self, number: str) -> bool:
        if self.person is not None:
            return number in self.own
        return covers(self.jurisdiction, region_of_permit(number))

    def covers_subject(self, subject: str, region: str) -> bool:
        """A row named by `subject` (a permit number or an SSN) of `region`."""
        if self.person is not None:
            return subject in self.own
        return covers(self.jurisdiction, region)

    def covers_row(self, row: RowType, record: Any) -> bool:
        if self.person is not None:
            return row.subject(record) in self.own
        return covers(self.jurisdiction, row.region(record))


class _Refused:
    """Stands in a list for a row refused before it was fetched; the executor refuses it."""

    __slots__ = ()


REFUSED: Final[Any] = _Refused()


def _guard(info: Info[Any, Any]) -> RowGuard | None:
    guard: RowGuard | None = info.context.rows
    return guard


def refuses_permit(info: Info[Any, Any], number: str) -> bool:
    """True (and the number recorded) if this permit's bound fields are selected here and its
    region is outside the caller's jurisdiction: then it must not be fetched."""
    return bool(refuses_permits(info, (number,)))


def refuses_permits(info: Info[Any, Any], numbers: Iterable[str]) -> set[str]:
    """The ones of `numbers` refused (see `refuses_permit`)."""
    guard = _guard(info)
    if guard is None:
        return set()
    outside = {n for n in numbers if not guard.covers_permit(n)}
    if not outside or (
        not guard.binds_everything and not selected(info, "WorkPermit", permit_triggers())
    ):
        return set()
    guard.refused.update(outside)
    return outside


def refuses_agency(info: Info[Any, Any], region: str, permit: str) -> bool:
    """A permit's enrollment and cards are read at the agency of its work location, which
    gives its SSNs its own region's prefix: outside the jurisdiction, every row it could
    return is refused, so it is not asked (the rows it returns are checked anyway). For a
    person, the agency of any permit of theirs may hold their rows."""
    guard = _guard(info)
    if guard is None or guard.covers_subject(permit, region) or not _served(info, region):
        return False
    guard.refused.add(permit)
    return True


def _served(info: Info[Any, Any], region: str) -> bool:
    """A region no agency of the hub serves has no enrollment to refuse: its answer is null
    for every caller, as before rows were bound, and tells nothing about anyone."""
    return region in info.context.sources.enrollments.regions()


def covered_agency(info: Info[Any, Any], region: str) -> bool:
    """False if the agency of `region` may only return rows this request must refuse (a
    person's rows may be at any agency: theirs are checked as they are completed)."""
    guard = _guard(info)
    return guard is None or guard.binds_everything or guard.covers(region)


def refuses_identifier(info: Info[Any, Any], subject: str, region: str) -> bool:
    """For a field every selection of which is bound (a foreigner, an enrollment, cards)."""
    guard = _guard(info)
    if guard is None or guard.covers_subject(subject, region):
        return False
    guard.refused.add(subject)
    return True


class RowBoundExecutor(Executor):
    """graphql-core's executor, refusing each row outside the request's jurisdiction as it is
    completed (after its fetch, before anything of it is released)."""

    def complete_object_value(
        self,
        return_type: GraphQLObjectType,
        field_details_list: FieldDetailsList,
        info: GraphQLResolveInfo,
        path: Path,
        result: Any,
        position_context: Any,
    ) -> AwaitableOrValue[dict[str, Any]]:
        if result is REFUSED:
            raise OutOfJurisdiction
        row = ROW_TYPES.get(return_type.name)
        if row is not None:
            guard: RowGuard = self.context_value.rows
            record = getattr(result, "_record", None)
            outside = record is None or not guard.covers_row(row, record)
            if outside and (
                guard.binds_everything or self._binds(row, return_type, field_details_list)
            ):
                if record is not None:
                    guard.refused.add(row.subject(record))
                raise OutOfJurisdiction
        return super().complete_object_value(
            return_type, field_details_list, info, path, result, position_context
        )

    def _binds(
        self, row: RowType, return_type: GraphQLObjectType, field_details_list: FieldDetailsList
    ) -> bool:
        if row.triggers is None:
            return True
        # graphql-core memoizes this per selection: it is the selection it will execute
        # (fragments merged, @skip/@include applied).
        grouped = self.collect_subfields(return_type, field_details_list).grouped_field_set
        return any(
            details[0].node.name.value in row.triggers for details in grouped.values()
        )
