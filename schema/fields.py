"""The field registry: one entry per schema field holding everything decided about it.

`FIELDS` maps "Type.field" to a `Field`: the scope it needs, the scope and identifier check of
each of its arguments, its cost, how it sizes the list under it, the batch items it asks for,
the plan reader that answers it from its parent's record, and its row binding. Identifier
fields of input objects are in `INPUT_IDENTIFIERS`, keyed the same way.

Deny by default: a field or argument missing here is refused for everybody, and
`tests/schema/test_policy_table.py` fails when a field of the schema has no entry or an entry
names no field. The modules that act on these decisions read them from here: `schema.policy`
(scopes), `schema.limits` (cost, list sizes, batches), `schema.arguments` (identifier checks)
and `schema.plans` (readers). This module holds decisions only: it never checks, costs or
answers anything itself, and it imports nothing of the hub but the identifier validators.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final, Literal

from connectors.identifiers import (
    REGIONS,
    validate_card_number,
    validate_credit_code,
    validate_permit_number,
    validate_region,
    validate_ssn,
    validate_subject,
)
from schema.entities import validate_representation

__all__ = [
    "BOUND_SCOPES",
    "CONNECTOR_FIELD_COST",
    "FIELDS",
    "INHERIT",
    "INPUT_IDENTIFIERS",
    "SELF_READ",
    "SELF_SUBSCRIBE",
    "Argument",
    "Binding",
    "Field",
    "Reader",
    "SizedBy",
    "Validator",
    "entry",
    "input_identifier",
]

# The scope of small value types (a region, a status change, a mutation's payload) that are only
# reachable through a field that is itself checked.
INHERIT: Final = "(inherit)"
# The cost of a field resolved through a connector (a DataLoader to a source system or the audit
# store); every other field costs 1.
CONNECTOR_FIELD_COST: Final = 5

Validator = Callable[[object], str]
# (record, field arguments, today) -> the field's value before serialization.
Reader = Callable[[Any, Mapping[str, Any], dt.date], Any]
# Which rows of a field a client may read: every row ("national": `permit:validity`, any
# checkpoint may check any permit) or only the rows of the regions its jurisdiction covers
# ("region-of-row": every other data scope). The row of a field is the record it is read from
# (a permit's holder and details are the permit's), except that a field returning rows of its
# own (an enrollment, cards, the foreigner an identifier names) is bound to those rows. A row's
# region is in `infra.regions`; `schema.rows` enforces the binding, before the fetch where the
# identifier tells the region and after it where only the record does.
Binding = Literal["national", "region-of-row"]
NATIONAL: Final = "national"
ROW: Final = "region-of-row"
# The scopes whose fields are bound to the rows of the client's jurisdiction: every data scope
# but `permit:validity`, the writes (enforced by the write workflows), and `self:read` (a
# person's own rows: their jurisdiction is themselves, `schema.person`).
BOUND_SCOPES: Final = frozenset({
    "permit:holder", "permit:detail", "person:identity", "enrollment:read", "card:status",
    "card:read", "enrollment:write", "card:write", "self:read",
})


# A person's own token (a foreigner through the e-SSC app, `schema.person`): these scopes open
# only the fields marked with them (`Field.person`), and only for that person's own rows: for
# such a token every row is bound and covered when it is the person's (`schema.rows`).
SELF_READ: Final = "self:read"
SELF_SUBSCRIBE: Final = "self:subscribe"


@dataclass(frozen=True, slots=True)
class SizedBy:
    """A size given by an argument: its length if a list, its value if an int."""

    argument: str
    default: int = 1  # when the argument is not given


@dataclass(frozen=True, slots=True)
class Argument:
    scope: str
    check: Validator | None = None  # identifier validator, run before execution
    names_permits: bool = False  # names the permits the request path reads first


@dataclass(frozen=True, slots=True)
class Field:
    scope: str
    arguments: Mapping[str, Argument] = field(default_factory=dict)
    cost: int = 1
    list_size: SizedBy | int | None = None  # None: `limits.DEFAULT_LIST_SIZE` for a list, else 1
    # Each item of this argument is one record asked for; the items of every batch field of a
    # request count together against `Limits.max_batch_items` (aliased batches add up).
    batch: SizedBy | None = None
    read: Reader | None = None  # answers the field from its parent's record in a compiled plan
    one_of: tuple[str, ...] = ()  # exactly one of these arguments must be given
    binding: Binding = "national"
    # The person's scope that also opens this field and its arguments (`SELF_READ`,
    # `SELF_SUBSCRIBE`), for the person's own rows only; None: the field's scope alone.
    person: str | None = None

    def opened_by(self, scopes: frozenset[str]) -> bool:
        """Whether a caller with `scopes` may select this field (its arguments likewise)."""
        return (
            self.scope == INHERIT
            or self.scope in scopes
            or (self.person is not None and self.person in scopes)
        )


def _plain(
    scope: str, type_name: str, names: str, binding: Binding = "national"
) -> dict[str, Field]:
    """Fields with nothing decided but their scope (and binding)."""
    return {f"{type_name}.{name}": Field(scope, binding=binding) for name in names.split()}


def _args(scope: str, **checks: Validator | None) -> dict[str, Argument]:
    return {name: Argument(scope, check) for name, check in checks.items()}


_VALIDITY = "permit:validity"
_PERMITS = Argument(_VALIDITY, validate_permit_number, names_permits=True)
_CONNECTOR = CONNECTOR_FIELD_COST

_REGISTERED: Final[dict[str, Field]] = {
    # ---- roots
    "Query.permit": Field(_VALIDITY, {"number": _PERMITS}, cost=_CONNECTOR),
    "Query.permits": Field(
        _VALIDITY,
        {"numbers": _PERMITS},
        cost=_CONNECTOR,
        list_size=SizedBy("numbers"),
        batch=SizedBy("numbers"),
    ),
    "Query.verifyPermitQr": Field(_VALIDITY, _args(_VALIDITY, payload=None)),
    # Federation (`schema.entities`): the SDL, open like the schema's own introspection; each
    # representation of `_entities` is an identifier, validated, counted against the batch
    # bounds and named as a subject like `permits(numbers:)`'s. The entities' fields are
    # checked like any field, and each entity type needs its root field's scope.
    "Query._service": Field(INHERIT),
    "_Service.sdl": Field(INHERIT),
    "Query._entities": Field(
        INHERIT,
        {"representations": Argument(INHERIT, validate_representation, names_permits=True)},
        cost=_CONNECTOR,
        list_size=SizedBy("representations"),
        batch=SizedBy("representations"),
    ),
    # Bound to the row its identifier names: a permit number's region, or an SSN's.
    "Query.foreigner": Field(
        "person:identity",
        _args("person:identity", permitNumber=validate_permit_number, ssn=validate_ssn),
        cost=_CONNECTOR,
        one_of=("permitNumber", "ssn"),
        binding=ROW,
    ),
    "Query.enrollment": Field(
        "enrollment:read", _args("enrollment:read", ssn=validate_ssn), cost=_CONNECTOR,
        binding=ROW,
    ),
    "Query.cards": Field(
        "card:status", _args("card:status", ssn=validate_ssn), cost=_CONNECTOR, binding=ROW
    ),
    "Query.accessLog": Field(
        "audit:read",
        _args("audit:read", filter=None, first=None, after=None),
        cost=_CONNECTOR,
        list_size=SizedBy("first", 50),
    ),
    "Query.subjectAccessLog": Field(
        "audit:subject",
        _args("audit:subject", subject=validate_subject, first=None, after=None),
        cost=_CONNECTOR,
        list_size=SizedBy("first", 50),
    ),
    # A person's own data tracker (the e-SSC app): their identifiers only, agency/time/purpose.
    "Query.myAccessLog": Field(
        SELF_READ,
        _args(SELF_READ, first=None, after=None),
        cost=_CONNECTOR,
        list_size=SizedBy("first", 50),
        binding=ROW,
    ),
    # The person's own holder record (reached through their permits), and the QR code of
    # their current permit, signed by the WMS (`schema.person`): their own rows.
    "Query.me": Field(SELF_READ, cost=_CONNECTOR, binding=ROW),
    "Query.myPermitQr": Field(SELF_READ, cost=_CONNECTOR, binding=ROW),
    **_plain(INHERIT, "PermitQr", "payload permitNumber expiresAt"),
    # Writes are bound too: the write workflows check the permit's, SSN's or card's region.
    "Mutation.registerEnrollment": Field(
        "enrollment:write", _args("enrollment:write", input=None), binding=ROW
    ),
    "Mutation.applyForCard": Field("card:write", _args("card:write", input=None), binding=ROW),
    "Mutation.applyForCards": Field("card:write", _args("card:write", input=None), binding=ROW),
    "Mutation.updateCardStatus": Field(
        "card:write", _args("card:write", input=None), binding=ROW
    ),
    # National: an event carries a permit's number and status, which is validity information
    # any checkpoint may read (README, "Jurisdiction").
    "Subscription.permitStatusChanged": Field(
        "events:subscribe",
        _args("events:subscribe", numbers=validate_permit_number),
        batch=SizedBy("numbers"),
    ),
    # ---- answers of the roots
    **_plain(INHERIT, "QrVerification", "valid reason permit"),
    **_plain(INHERIT, "RegisterEnrollmentPayload", "enrollment created"),
    **_plain(INHERIT, "CardApplicationPayload", "card created"),
    **_plain(INHERIT, "BatchCardApplicationPayload", "results total created replayed failed"),
    **_plain(INHERIT, "CardApplicationResult", "index ssn card created error"),
    **_plain(INHERIT, "CardApplicationError", "code message reason existingCard"),
    **_plain(INHERIT, "ExistingCard", "cardNumber kind region"),
    **_plain(INHERIT, "UpdateCardStatusPayload", "card"),
    **_plain(INHERIT, "AccessEventConnection", "pageInfo"),
    "AccessEventConnection.edges": Field(INHERIT, list_size=1),  # by the connection's `first`
    **_plain(INHERIT, "AccessEventEdge", "cursor node"),
    **_plain(INHERIT, "PageInfo", "hasNextPage endCursor"),
    **_plain(INHERIT, "MyAccessLog", "endCursor hasNextPage"),
    "MyAccessLog.entries": Field(INHERIT, list_size=1),  # by the query's `first`
    **_plain(INHERIT, "MyAccess", "time agency purpose"),
    **_plain(
        INHERIT,
        "AccessEvent",
        "id seq time kind clientId agency purpose operation documentHash fields subjects denied "
        "outcome errorCodes traceId clientAddress responseSha256 prevHash hash",
    ),
    # Who stood behind an access (an officer's id, the case they named): an auditor's, never
    # the data tracker's (a person learns which agency looked, not which officer).
    **_plain("audit:read", "AccessEvent", "actor actorKind caseReference"),
    # ---- a permit (its readers mirror the resolvers in `schema.types`)
    "WorkPermit.number": Field(_VALIDITY, read=lambda p, a, t: p.number),
    "WorkPermit.status": Field(_VALIDITY, read=lambda p, a, t: p.status),
    "WorkPermit.validFrom": Field(_VALIDITY, read=lambda p, a, t: p.valid_from),
    "WorkPermit.validUntil": Field(_VALIDITY, read=lambda p, a, t: p.valid_until),
    "WorkPermit.isValid": Field(
        _VALIDITY, _args(_VALIDITY, on=None), read=lambda p, a, t: p.is_valid_on(a.get("on") or t)
    ),
    "WorkPermit.medium": Field(_VALIDITY, read=lambda p, a, t: p.medium),
    # The permit's own bound fields: its row is the permit (its number's region).
    "WorkPermit.holder": Field("permit:holder", read=lambda p, a, t: p.holder, binding=ROW),
    "WorkPermit.employer": Field("permit:detail", read=lambda p, a, t: p.employer, binding=ROW),
    "WorkPermit.category": Field("permit:detail", read=lambda p, a, t: p.category, binding=ROW),
    "WorkPermit.position": Field("permit:detail", read=lambda p, a, t: p.position, binding=ROW),
    "WorkPermit.workLocation": Field(
        "permit:detail", read=lambda p, a, t: p.work_location, binding=ROW
    ),
    "WorkPermit.notificationLetterNumber": Field(
        "permit:detail", read=lambda p, a, t: p.notification_letter_number, binding=ROW
    ),
    "WorkPermit.history": Field("permit:detail", cost=_CONNECTOR, binding=ROW),
    # Links to rows of their own, each bound to its row (an enrollment's SSN, a card's region).
    "WorkPermit.enrollment": Field("enrollment:read", cost=_CONNECTOR, binding=ROW),
    "WorkPermit.cards": Field("card:status", cost=_CONNECTOR, binding=ROW),
    # ---- a permit's holder: part of the row it was reached through (its permit, or the
    # permit or SSN `Query.foreigner` was asked with)
    "Foreigner.id": Field("permit:holder", read=lambda f, a, t: f.id, binding=ROW),
    "Foreigner.name": Field("permit:holder", read=lambda f, a, t: f.name, binding=ROW),
    "Foreigner.nationality": Field(
        "permit:holder", read=lambda f, a, t: f.nationality, binding=ROW
    ),
    "Foreigner.passportNumber": Field(
        "person:identity", read=lambda f, a, t: f.passport_number, binding=ROW
    ),
    "Foreigner.dateOfBirth": Field(
        "person:identity", read=lambda f, a, t: f.date_of_birth, binding=ROW
    ),
    "Foreigner.gender": Field("person:identity", read=lambda f, a, t: f.gender, binding=ROW),
    # National: each permit listed is a row of its own, bound by its own fields.
    "Foreigner.permits": Field(_VALIDITY, cost=_CONNECTOR),
    "Foreigner.enrollments": Field("enrollment:read", cost=_CONNECTOR, binding=ROW),
    # ---- social security: an enrollment's row is its SSN's region, a card's its region
    **_plain(
        "enrollment:read",
        "Enrollment",
        "ssn permitNumber region status enrolledOn employerCreditCode",
        ROW,
    ),
    "Enrollment.permit": Field("enrollment:read", cost=_CONNECTOR, binding=ROW),
    "Enrollment.cards": Field("enrollment:read", cost=_CONNECTOR, binding=ROW),
    **_plain("card:status", "SocialSecurityCard", "kind status issuedOn region", ROW),
    **_plain("card:read", "SocialSecurityCard", "cardNumber ssn channel history", ROW),
    # ---- small values (an employer is part of its permit's row)
    "Employer.creditCode": Field(
        "permit:detail", read=lambda e, a, t: e.credit_code, binding=ROW
    ),
    "Employer.name": Field("permit:detail", read=lambda e, a, t: e.name, binding=ROW),
    "Employer.region": Field("permit:detail", read=lambda e, a, t: e.region, binding=ROW),
    # A region's record is its GB/T 2260 code.
    "Region.code": Field(INHERIT, read=lambda code, a, t: code),
    "Region.name": Field(INHERIT, read=lambda code, a, t: REGIONS.get(code)),
    **_plain(INHERIT, "PermitEvent", "permitNumber kind at status detail"),
    **_plain(INHERIT, "CardStatusChange", "status at reason"),
}

# What a person's own token opens (README, "A foreigner's own rows"): their permits' validity,
# holder (id, name, nationality: never the passport number, birth date or gender), details and
# history, their enrollments and cards (status, not the card number nor its channel), and the
# links between them. Nothing of an access record, no mutation. Each row they reach is
# checked to be theirs (`schema.rows`), so these open fields, not other people's rows.
def _each(type_name: str, names: str) -> list[str]:
    return [f"{type_name}.{name}" for name in names.split()]


_OPENED_TO_SELF: Final[Mapping[str, str]] = {
    **{
        key: SELF_READ
        for key in (
            *_each("Query", "permit permits enrollment cards"),
            *_each(
                "WorkPermit",
                "number status validFrom validUntil isValid medium holder employer category "
                "position workLocation history enrollment cards",
            ),
            *_each("Foreigner", "id name nationality permits enrollments"),
            *_each("Employer", "creditCode name region"),
            *_each("Enrollment", "ssn permitNumber region status enrolledOn permit cards"),
            *_each("SocialSecurityCard", "kind status issuedOn region"),
        )
    },
    "Subscription.permitStatusChanged": SELF_SUBSCRIBE,
}
assert _OPENED_TO_SELF.keys() <= _REGISTERED.keys(), "a person's field names no field"

FIELDS: Final[Mapping[str, Field]] = {
    key: replace(f, person=_OPENED_TO_SELF[key]) if key in _OPENED_TO_SELF else f
    for key, f in _REGISTERED.items()
}

# "InputType.field" -> validator, for identifiers inside input objects. Their scope is that of
# the argument that carries the input object (`Mutation.registerEnrollment(input)`).
INPUT_IDENTIFIERS: Final[Mapping[str, Validator]] = {
    "RegisterEnrollmentInput.permitNumber": validate_permit_number,
    "RegisterEnrollmentInput.region": validate_region,
    "RegisterEnrollmentInput.employerCreditCode": validate_credit_code,
    "CardApplicationInput.ssn": validate_ssn,
    "BatchCardApplicationInput.employerCreditCode": validate_credit_code,
    "UpdateCardStatusInput.cardNumber": validate_card_number,
    # Not "BatchCardApplicationItem.ssn": a malformed SSN fails its own item, not the batch;
    # `workflows.cards` validates it before anything is sent upstream.
}


def _pair(key: str) -> tuple[str, str]:
    type_name, _, field_name = key.partition(".")
    return type_name, field_name


# The same entries keyed (type, field): lookups on the request path build no strings.
_FIELDS_BY_PAIR = {_pair(key): value for key, value in FIELDS.items()}
_INPUTS_BY_PAIR = {_pair(key): value for key, value in INPUT_IDENTIFIERS.items()}


def entry(type_name: str, field_name: str) -> Field | None:
    """The registry's entry for `type_name.field_name` (None: the field is refused)."""
    return _FIELDS_BY_PAIR.get((type_name, field_name))


def input_identifier(type_name: str, field_name: str) -> Validator | None:
    """The identifier check of an input object's field, if it is an identifier."""
    return _INPUTS_BY_PAIR.get((type_name, field_name))
