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
from dataclasses import dataclass, field
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

__all__ = [
    "CONNECTOR_FIELD_COST",
    "FIELDS",
    "INHERIT",
    "INPUT_IDENTIFIERS",
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
# Which rows of a field a client may read: every row ("national") or the rows of the regions
# its agency serves ("region-of-row"). Recorded here, not enforced yet.
Binding = Literal["national", "region-of-row"]


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


def _plain(scope: str, type_name: str, names: str) -> dict[str, Field]:
    """Fields with nothing decided but their scope."""
    return {f"{type_name}.{name}": Field(scope) for name in names.split()}


def _args(scope: str, **checks: Validator | None) -> dict[str, Argument]:
    return {name: Argument(scope, check) for name, check in checks.items()}


_VALIDITY = "permit:validity"
_PERMITS = Argument(_VALIDITY, validate_permit_number, names_permits=True)
_CONNECTOR = CONNECTOR_FIELD_COST

FIELDS: Final[Mapping[str, Field]] = {
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
    "Query.foreigner": Field(
        "person:identity",
        _args("person:identity", permitNumber=validate_permit_number, ssn=validate_ssn),
        cost=_CONNECTOR,
        one_of=("permitNumber", "ssn"),
    ),
    "Query.enrollment": Field(
        "enrollment:read", _args("enrollment:read", ssn=validate_ssn), cost=_CONNECTOR
    ),
    "Query.cards": Field("card:status", _args("card:status", ssn=validate_ssn), cost=_CONNECTOR),
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
    "Mutation.registerEnrollment": Field("enrollment:write", _args("enrollment:write", input=None)),
    "Mutation.applyForCard": Field("card:write", _args("card:write", input=None)),
    "Mutation.applyForCards": Field("card:write", _args("card:write", input=None)),
    "Mutation.updateCardStatus": Field("card:write", _args("card:write", input=None)),
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
    **_plain(
        INHERIT,
        "AccessEvent",
        "id seq time kind clientId agency purpose operation documentHash fields subjects denied "
        "outcome errorCodes traceId clientAddress responseSha256 prevHash hash",
    ),
    # ---- a permit (its readers mirror the resolvers in `schema.types`)
    "WorkPermit.number": Field(_VALIDITY, read=lambda p, a, t: p.number),
    "WorkPermit.status": Field(_VALIDITY, read=lambda p, a, t: p.status),
    "WorkPermit.validFrom": Field(_VALIDITY, read=lambda p, a, t: p.valid_from),
    "WorkPermit.validUntil": Field(_VALIDITY, read=lambda p, a, t: p.valid_until),
    "WorkPermit.isValid": Field(
        _VALIDITY, _args(_VALIDITY, on=None), read=lambda p, a, t: p.is_valid_on(a.get("on") or t)
    ),
    "WorkPermit.medium": Field(_VALIDITY, read=lambda p, a, t: p.medium),
    "WorkPermit.holder": Field("permit:holder", read=lambda p, a, t: p.holder),
    "WorkPermit.employer": Field("permit:detail", read=lambda p, a, t: p.employer),
    "WorkPermit.category": Field("permit:detail", read=lambda p, a, t: p.category),
    "WorkPermit.position": Field("permit:detail", read=lambda p, a, t: p.position),
    "WorkPermit.workLocation": Field("permit:detail", read=lambda p, a, t: p.work_location),
    "WorkPermit.notificationLetterNumber": Field(
        "permit:detail", read=lambda p, a, t: p.notification_letter_number
    ),
    "WorkPermit.history": Field("permit:detail", cost=_CONNECTOR),
    "WorkPermit.enrollment": Field("enrollment:read", cost=_CONNECTOR),
    "WorkPermit.cards": Field("card:status", cost=_CONNECTOR),
    # ---- a permit's holder
    "Foreigner.id": Field("permit:holder", read=lambda f, a, t: f.id),
    "Foreigner.name": Field("permit:holder", read=lambda f, a, t: f.name),
    "Foreigner.nationality": Field("permit:holder", read=lambda f, a, t: f.nationality),
    "Foreigner.passportNumber": Field("person:identity", read=lambda f, a, t: f.passport_number),
    "Foreigner.dateOfBirth": Field("person:identity", read=lambda f, a, t: f.date_of_birth),
    "Foreigner.gender": Field("person:identity", read=lambda f, a, t: f.gender),
    "Foreigner.permits": Field(_VALIDITY, cost=_CONNECTOR),
    "Foreigner.enrollments": Field("enrollment:read", cost=_CONNECTOR),
    # ---- social security
    **_plain(
        "enrollment:read",
        "Enrollment",
        "ssn permitNumber region status enrolledOn employerCreditCode",
    ),
    "Enrollment.permit": Field("enrollment:read", cost=_CONNECTOR),
    "Enrollment.cards": Field("enrollment:read", cost=_CONNECTOR),
    **_plain("card:status", "SocialSecurityCard", "kind status issuedOn region"),
    **_plain("card:read", "SocialSecurityCard", "cardNumber ssn channel history"),
    # ---- small values
    "Employer.creditCode": Field("permit:detail", read=lambda e, a, t: e.credit_code),
    "Employer.name": Field("permit:detail", read=lambda e, a, t: e.name),
    "Employer.region": Field("permit:detail", read=lambda e, a, t: e.region),
    # A region's record is its GB/T 2260 code.
    "Region.code": Field(INHERIT, read=lambda code, a, t: code),
    "Region.name": Field(INHERIT, read=lambda code, a, t: REGIONS.get(code)),
    **_plain(INHERIT, "PermitEvent", "permitNumber kind at status detail"),
    **_plain(INHERIT, "CardStatusChange", "status at reason"),
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
