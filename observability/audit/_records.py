"""What one audit record holds, its canonical JSON, and how it is chained.

Chaining: `digest = SHA-256(canonical(content))`, `hash = SHA-256(prev_hash || digest)` (raw
32-byte values; the first record's `prev_hash` is 64 zeros). `content` is every stored field but
`prev_hash` and `hash`, including `seq` and `id`, so moving a record breaks its own hash. Hashing
the content first, rather than `prev_hash || canonical(content)` directly, lets a proof show that
one record leads to a signed checkpoint by listing the *digests* of the records after it: an
agency proving one access learns nothing about anyone else's.

Canonical JSON: sorted keys, no whitespace, UTF-8 (orjson with OPT_SORT_KEYS); times are UTC ISO
8601 with microseconds and `Z`, dates ISO 8601, list-valued fields sorted and without repeats.
The record holds identifiers only (client, subjects, hashes), never personal data. An event's
texts are bounded when it is made (`_bounds`: printable, each field capped at its column's width).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Literal, get_args

import orjson
from sqlalchemy.engine import RowMapping

from observability.audit._bounds import CAPS, ITEM_CAPS, bounded, bounded_items, within

__all__ = [
    "GENESIS_HASH",
    "AuditEvent",
    "AuditRecord",
    "Kind",
    "Outcome",
    "canonical",
    "chain_hash",
    "content_digest",
    "record_from_json",
    "record_to_json",
]

Outcome = Literal["OK", "PARTIAL", "DENIED", "ERROR"]
Kind = Literal["graphql", "token", "admin", "audit_read", "event", "subscription", "webhook"]

GENESIS_HASH = "0" * 64
_LIST_FIELDS = ("fields", "subjects", "denied", "error_codes")
# Who stood behind a request, when anyone did (an exchanged token's person, its kind, and the
# case an officer named). Added after the first records were written: see `content`.
_PERSON_FIELDS = ("actor", "actor_kind", "case_reference")
_TEXT_CAPS = tuple(CAPS.items())
_ITEM_CAPS = tuple(ITEM_CAPS.items())


@dataclass(frozen=True)
class AuditEvent:
    """What the hub knows about one request when it has been answered (before release)."""

    time: datetime
    kind: Kind
    outcome: Outcome
    client_id: str | None = None
    agency: str | None = None
    purpose: str | None = None
    operation: str | None = None
    document_hash: str | None = None
    fields: tuple[str, ...] = ()
    subjects: tuple[str, ...] = ()
    denied: tuple[str, ...] = ()
    error_codes: tuple[str, ...] = ()
    trace_id: str | None = None
    client_address: str | None = None
    response_sha256: str | None = None
    embargoed_until: date | None = None
    actor: str | None = None
    actor_kind: str | None = None
    case_reference: str | None = None

    def __post_init__(self) -> None:
        if self.time.tzinfo is None:
            raise ValueError("AuditEvent.time must be timezone-aware")
        if self.outcome not in get_args(Outcome):
            raise ValueError(f"unknown outcome {self.outcome!r}")
        if self.kind not in get_args(Kind):
            raise ValueError(f"unknown kind {self.kind!r}")
        # Every text bounded here, so no caller can build an event the store would refuse
        # (frozen for everyone else: replaced once, before anyone sees the event). Every
        # request makes one: the usual, harmless values are only looked at.
        for name, cap in _TEXT_CAPS:
            value = getattr(self, name)
            if value is not None and not within(value, cap):
                object.__setattr__(self, name, bounded(value, cap))
        for name, cap in _ITEM_CAPS:
            values = getattr(self, name)
            if not all(within(value, cap) for value in values):
                object.__setattr__(self, name, bounded_items(values, cap))


@dataclass(frozen=True)
class AuditRecord:
    """One stored record: the event plus its place in the chain."""

    seq: int
    id: str
    time: datetime
    kind: Kind
    outcome: Outcome
    client_id: str | None
    agency: str | None
    purpose: str | None
    operation: str | None
    document_hash: str | None
    fields: tuple[str, ...]
    subjects: tuple[str, ...]
    denied: tuple[str, ...]
    error_codes: tuple[str, ...]
    trace_id: str | None
    client_address: str | None
    response_sha256: str | None
    embargoed_until: date | None
    prev_hash: str = field(default=GENESIS_HASH)
    hash: str = field(default="")
    actor: str | None = None
    actor_kind: str | None = None
    case_reference: str | None = None

    def content(self) -> dict[str, Any]:
        """The hashed part: every field but `prev_hash` and `hash`, in JSON types.

        The person fields (`_PERSON_FIELDS`) are in it only when set: records written before
        they existed hash exactly as they did, and a record that names a person cannot have
        that name removed or changed without breaking its hash."""
        person = {name: getattr(self, name) for name in _PERSON_FIELDS}
        return {
            **{name: value for name, value in person.items() if value is not None},
            "seq": self.seq,
            "id": self.id,
            "time": format_time(self.time),
            "kind": self.kind,
            "outcome": self.outcome,
            "client_id": self.client_id,
            "agency": self.agency,
            "purpose": self.purpose,
            "operation": self.operation,
            "document_hash": self.document_hash,
            "fields": list(self.fields),
            "subjects": list(self.subjects),
            "denied": list(self.denied),
            "error_codes": list(self.error_codes),
            "trace_id": self.trace_id,
            "client_address": self.client_address,
            "response_sha256": self.response_sha256,
            "embargoed_until": (
                self.embargoed_until.isoformat() if self.embargoed_until else None
            ),
        }


def new_record_id() -> str:
    """A random 32-hex-digit id: unguessable, so naming one in evidence reveals nothing."""
    return uuid.uuid4().hex


def normalised(values: Iterable[str]) -> tuple[str, ...]:
    """Sorted without repeats: the same set of values always hashes the same."""
    return tuple(sorted(set(values)))


def format_time(value: datetime) -> str:
    """`%Y-%m-%dT%H:%M:%S.%fZ` in UTC; isoformat writes the same, several times faster."""
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def parse_time(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def aware(value: datetime) -> datetime:
    """SQLite gives naive datetimes back; everything we store is UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def chained(event: AuditEvent, seq: int, record_id: str, prev_hash: str) -> AuditRecord:
    """The record `event` becomes at position `seq`, hashed onto `prev_hash`."""
    record = AuditRecord(  # its hash is set below, before anyone sees it
        seq=seq,
        id=record_id,
        time=event.time.astimezone(UTC),
        kind=event.kind,
        outcome=event.outcome,
        client_id=event.client_id,
        agency=event.agency,
        purpose=event.purpose,
        operation=event.operation,
        document_hash=event.document_hash,
        fields=normalised(event.fields),
        subjects=normalised(event.subjects),
        denied=normalised(event.denied),
        error_codes=normalised(event.error_codes),
        trace_id=event.trace_id,
        client_address=event.client_address,
        response_sha256=event.response_sha256,
        embargoed_until=event.embargoed_until,
        prev_hash=prev_hash,
        actor=event.actor,
        actor_kind=event.actor_kind,
        case_reference=event.case_reference,
    )
    # Frozen for everyone else; built once rather than copied to add the hash.
    object.__setattr__(record, "hash", recomputed_hash(record))
    return record


def canonical(value: Mapping[str, Any]) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def content_digest(content: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical(content)).hexdigest()


def chain_hash(prev_hash: str, digest: str) -> str:
    return hashlib.sha256(bytes.fromhex(prev_hash) + bytes.fromhex(digest)).hexdigest()


def record_to_json(record: AuditRecord) -> dict[str, Any]:
    """The record as exported and proved: its content plus `prev_hash` and `hash`."""
    return {**record.content(), "prev_hash": record.prev_hash, "hash": record.hash}


def record_from_json(value: Mapping[str, Any]) -> AuditRecord:
    """Inverse of `record_to_json`; raises KeyError/ValueError on a malformed record."""
    embargo = value["embargoed_until"]
    lists = {name: tuple(str(item) for item in value[name]) for name in _LIST_FIELDS}
    return AuditRecord(
        seq=int(value["seq"]),
        id=str(value["id"]),
        time=parse_time(value["time"]),
        kind=value["kind"],
        outcome=value["outcome"],
        client_id=value["client_id"],
        agency=value["agency"],
        purpose=value["purpose"],
        operation=value["operation"],
        document_hash=value["document_hash"],
        trace_id=value["trace_id"],
        client_address=value["client_address"],
        response_sha256=value["response_sha256"],
        embargoed_until=date.fromisoformat(embargo) if embargo else None,
        prev_hash=str(value["prev_hash"]),
        hash=str(value["hash"]),
        actor=_text_or_none(value.get("actor")),
        actor_kind=_text_or_none(value.get("actor_kind")),
        case_reference=_text_or_none(value.get("case_reference")),
        **lists,
    )


def _text_or_none(value: object) -> str | None:
    return None if value is None else str(value)


def record_from_row(row: RowMapping) -> AuditRecord:
    """A stored row as a record, exactly as stored (a tampered row stays tampered)."""
    lists = {name: tuple(orjson.loads(row[name])) for name in _LIST_FIELDS}
    return AuditRecord(
        seq=row["seq"],
        id=row["id"],
        time=aware(row["time"]),
        kind=row["kind"],
        outcome=row["outcome"],
        client_id=row["client_id"],
        agency=row["agency"],
        purpose=row["purpose"],
        operation=row["operation"],
        document_hash=row["document_hash"],
        trace_id=row["trace_id"],
        client_address=row["client_address"],
        response_sha256=row["response_sha256"],
        embargoed_until=row["embargoed_until"],
        prev_hash=row["prev_hash"],
        hash=row["hash"],
        actor=row["actor"],
        actor_kind=row["actor_kind"],
        case_reference=row["case_reference"],
        **lists,
    )


def record_to_row(record: AuditRecord) -> dict[str, Any]:
    lists = {name: orjson.dumps(list(getattr(record, name))).decode() for name in _LIST_FIELDS}
    return {
        **{key: value for key, value in record.__dict__.items() if key not in _LIST_FIELDS},
        **lists,
    }


def recomputed_hash(record: AuditRecord) -> str:
    """The hash `record` should carry given its content and `prev_hash`."""
    return chain_hash(record.prev_hash, content_digest(record.content()))
