"""JSON wire format of the HTTP source systems: camelCase keys, ISO 8601 dates and datetimes.

Both directions live here so the simulators and the connectors cannot drift apart. Parsing
raises `WireFormatError` (a `ValueError`) on any malformed input and never lets a KeyError,
TypeError or AttributeError escape: connectors translate it into `UpstreamUnavailable`.
This module never does I/O and never imports a transport or GraphQL library.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from enum import StrEnum
from functools import wraps
from typing import Any, TypeVar

from connectors.records import (
    Card,
    CardApplication,
    CardApplicationResult,
    CardChannel,
    CardKind,
    CardStatus,
    CardStatusChange,
    Employer,
    Foreigner,
    Permit,
    PermitCategory,
    PermitEvent,
    PermitEventKind,
    PermitMedium,
    PermitStatus,
)

__all__ = [
    "WireFormatError",
    "application_from_wire",
    "application_result_from_wire",
    "application_result_to_wire",
    "application_to_wire",
    "card_from_wire",
    "card_to_wire",
    "employer_from_wire",
    "employer_to_wire",
    "event_from_wire",
    "event_to_wire",
    "foreigner_from_wire",
    "foreigner_to_wire",
    "permit_from_wire",
    "permit_to_wire",
]

Wire = dict[str, Any]
_E = TypeVar("_E", bound=StrEnum)
_T = TypeVar("_T")


class WireFormatError(ValueError):
    """A source system answered with JSON that does not match the wire format."""


# --- encoding ---------------------------------------------------------------------------------


def _instant(value: dt.datetime) -> str:
    return value.isoformat()


def foreigner_to_wire(foreigner: Foreigner) -> Wire:
    return {
        "id": foreigner.id,
        "name": foreigner.name,
        "nationality": foreigner.nationality,
        "passportNumber": foreigner.passport_number,
        "dateOfBirth": foreigner.date_of_birth.isoformat(),
        "gender": foreigner.gender,
    }


def employer_to_wire(employer: Employer) -> Wire:
    return {"creditCode": employer.credit_code, "name": employer.name, "region": employer.region}


def permit_to_wire(permit: Permit) -> Wire:
    return {
        "number": permit.number,
        "status": permit.status.value,
        "validFrom": permit.valid_from.isoformat(),
        "validUntil": permit.valid_until.isoformat(),
        "medium": permit.medium.value,
        "holder": foreigner_to_wire(permit.holder),
        "employer": employer_to_wire(permit.employer),
        "category": permit.category.value,
        "position": permit.position,
        "workLocation": permit.work_location,
        "notificationLetterNumber": permit.notification_letter_number,
    }


def event_to_wire(event: PermitEvent) -> Wire:
    return {
        "permitNumber": event.permit_number,
        "kind": event.kind.value,
        "at": _instant(event.at),
        "status": event.status.value,
        "detail": event.detail,
    }


def _change_to_wire(change: CardStatusChange) -> Wire:
    return {"status": change.status.value, "at": _instant(change.at), "reason": change.reason}


def card_to_wire(card: Card) -> Wire:
    return {
        "cardNumber": card.card_number,
        "ssn": card.ssn,
        "kind": card.kind.value,
        "status": card.status.value,
        "issuedOn": card.issued_on.isoformat() if card.issued_on is not None else None,
        "region": card.region,
        "channel": card.channel.value,
        "history": [_change_to_wire(change) for change in card.history],
    }


def application_to_wire(application: CardApplication) -> Wire:
    return {
        "ssn": application.ssn,
        "kind": application.kind.value,
        "channel": application.channel.value,
        "region": application.region,
        "idempotencyKey": application.idempotency_key,
        "requestHash": application.request_hash,
    }


def application_result_to_wire(result: CardApplicationResult) -> Wire:
    return {
        "card": card_to_wire(result.card) if result.card is not None else None,
        "created": result.created,
        "conflict": result.conflict,
    }


# --- decoding ---------------------------------------------------------------------------------


def _parser(what: str) -> Callable[[Callable[[Mapping[str, Any]], _T]], Callable[[object], _T]]:
    """Make a parser of one JSON object `what` from a function of its fields.

    The parser refuses anything but an object, and turns every stray lookup or type error while
    reading its fields into a WireFormatError. (A decorator rather than a `with` block in each
    parser: a cached page of 500 permits is decoded on every batch request.)
    """

    def decorate(parse: Callable[[Mapping[str, Any]], _T]) -> Callable[[object], _T]:
        @wraps(parse)
        def parse_object(data: object) -> _T:
            try:
                return parse(_object(data, what))
            except WireFormatError:
                raise
            except (KeyError, TypeError, AttributeError, ValueError, IndexError) as exc:
                raise WireFormatError(f"malformed {what}: {type(exc).__name__}") from None

        return parse_object

    return decorate


def _object(value: object, what: str) -> Mapping[str, Any]:
    if type(value) is not dict and not isinstance(value, Mapping):  # dict: the usual, fast
        raise WireFormatError(f"{what}: expected a JSON object")
    return value


def _str(data: Mapping[str, Any], key: str) -> str:
    value = data[key]
    if not isinstance(value, str):
        raise WireFormatError(f"{key}: expected a string")
    return value


def _optional(data: Mapping[str, Any], key: str, parse: Callable[[str], _T]) -> _T | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise WireFormatError(f"{key}: expected a string or null")
    return parse(value)


def _date(data: Mapping[str, Any], key: str) -> dt.date:
    return dt.date.fromisoformat(_str(data, key))


def _aware(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise WireFormatError("datetime without a UTC offset")
    return value


# Each wire enum's members by value: a dict lookup costs a fraction of calling the enum class.
_MEMBERS: dict[type[StrEnum], Mapping[str, StrEnum]] = {
    kind: {member.value: member for member in kind}
    for kind in (
        PermitStatus, PermitMedium, PermitCategory, PermitEventKind, CardKind, CardStatus,
        CardChannel,
    )
}


def _enum(data: Mapping[str, Any], key: str, kind: type[_E]) -> _E:
    member = _MEMBERS[kind].get(_str(data, key))
    if member is None:
        raise WireFormatError(f"{key}: not a {kind.__name__}")
    return member  # type: ignore[return-value]  # _MEMBERS[kind] holds members of `kind`


def _list(data: Mapping[str, Any], key: str) -> list[Any]:
    value = data[key]
    if not isinstance(value, list):
        raise WireFormatError(f"{key}: expected a list")
    return value


@_parser("foreigner")
def foreigner_from_wire(d: Mapping[str, Any]) -> Foreigner:
    return Foreigner(
        id=_str(d, "id"),
        name=_str(d, "name"),
        nationality=_str(d, "nationality"),
        passport_number=_str(d, "passportNumber"),
        date_of_birth=_date(d, "dateOfBirth"),
        gender=_str(d, "gender"),
    )


@_parser("employer")
def employer_from_wire(d: Mapping[str, Any]) -> Employer:
    return Employer(_str(d, "creditCode"), name=_str(d, "name"), region=_str(d, "region"))


@_parser("permit")
def permit_from_wire(d: Mapping[str, Any]) -> Permit:
    return Permit(
        number=_str(d, "number"),
        status=_enum(d, "status", PermitStatus),
        valid_from=_date(d, "validFrom"),
        valid_until=_date(d, "validUntil"),
        medium=_enum(d, "medium", PermitMedium),
        holder=foreigner_from_wire(d["holder"]),
        employer=employer_from_wire(d["employer"]),
        category=_enum(d, "category", PermitCategory),
        position=_str(d, "position"),
        work_location=_str(d, "workLocation"),
        notification_letter_number=_optional(d, "notificationLetterNumber", str),
    )


@_parser("permit event")
def event_from_wire(d: Mapping[str, Any]) -> PermitEvent:
    return PermitEvent(
        permit_number=_str(d, "permitNumber"),
        kind=_enum(d, "kind", PermitEventKind),
        at=_aware(_str(d, "at")),
        status=_enum(d, "status", PermitStatus),
        detail=_optional(d, "detail", str),
    )


def _change_from_wire(data: object) -> CardStatusChange:
    d = _object(data, "card status change")
    return CardStatusChange(
        status=_enum(d, "status", CardStatus),
        at=_aware(_str(d, "at")),
        reason=_optional(d, "reason", str),
    )


@_parser("card")
def card_from_wire(d: Mapping[str, Any]) -> Card:
    return Card(
        card_number=_str(d, "cardNumber"),
        ssn=_str(d, "ssn"),
        kind=_enum(d, "kind", CardKind),
        status=_enum(d, "status", CardStatus),
        issued_on=_optional(d, "issuedOn", dt.date.fromisoformat),
        region=_str(d, "region"),
        channel=_enum(d, "channel", CardChannel),
        history=tuple(_change_from_wire(c) for c in _list(d, "history")),
    )


@_parser("card application")
def application_from_wire(d: Mapping[str, Any]) -> CardApplication:
    return CardApplication(
        ssn=_str(d, "ssn"),
        kind=_enum(d, "kind", CardKind),
        channel=_enum(d, "channel", CardChannel),
        region=_str(d, "region"),
        idempotency_key=_str(d, "idempotencyKey"),
        request_hash=_str(d, "requestHash"),
    )


@_parser("card application result")
def application_result_from_wire(d: Mapping[str, Any]) -> CardApplicationResult:
    created = d["created"]
    if not isinstance(created, bool):
        raise WireFormatError("created: expected true or false")
    card = d.get("card")
    conflict = _optional(d, "conflict", str)
    if (card is None) == (conflict is None):
        raise WireFormatError("expected either a card or a conflict")
    return CardApplicationResult(
        card=card_from_wire(card) if card is not None else None,
        created=created,
        conflict=conflict,
    )
