"""Permit change events: the record, its wire form, and the bus that carries it between hubs.

The Work Management System pushes each renewal, alteration or cancellation to one hub instance;
that instance publishes it on the `EventBus`, and every instance (itself included) hands it to
its local subscribers. The bus is the shared-state stream (`infra.shared_state`): a
`permit-event` entry, read by every instance sharing the Redis prefix (or, embedded, by the one
process through the in-process twin).

The stream keeps its entries: an instance that lost Redis for a moment reads the events it
missed when it answers again, so its subscribers miss none. Only an outage long enough for the
stream to be trimmed past the instance's last id (or a Redis restart) loses events; the instance
then reloads its replica, and the events that must never be lost, the webhooks, are queued in
the hub database anyway.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import Key

from connectors.identifiers import InvalidIdentifier, validate_permit_number
from connectors.records import PermitEvent, PermitEventKind, PermitMedium, PermitStatus
from infra.kv import KeyValueUnavailable
from infra.shared_state import SharedState

__all__ = [
    "CHANGE_KINDS",
    "EVENT_TYPE",
    "PERMIT_EVENT",
    "EventBus",
    "EventBusUnavailable",
    "EventRejected",
    "PermitChange",
    "StreamEventBus",
    "verify_permit_event",
]

log = logging.getLogger("connectors.events")

# The kinds the WMS pushes; ISSUED and EXPIRED are not pushed (nobody held the permit before,
# and expiry is a date every reader can compare).
CHANGE_KINDS = frozenset(
    {
        PermitEventKind.RENEWED,
        PermitEventKind.ALTERED,
        PermitEventKind.CANCELLED,
        PermitEventKind.REVOKED,
        PermitEventKind.REISSUED_ELECTRONIC,
    }
)
EVENT_TYPE = "permit-event+jwt"  # JWS `typ`: a QR code (typ JWT) is never taken for an event
EVENT_ISSUER = "wms"
EVENT_ALGORITHMS = ("ES256",)
MAX_EVENT_BYTES = 8192
PERMIT_EVENT = "permit-event"  # its kind of shared-state entry
_QUEUE_SIZE = 1000  # per local subscriber; a subscriber this far behind loses the oldest events


@dataclass(frozen=True, slots=True)
class PermitChange:
    """One change of one permit, as the WMS reported it (its state after the change)."""

    event_id: str
    permit_number: str
    kind: PermitEventKind
    at: dt.datetime
    status: PermitStatus
    medium: PermitMedium
    valid_until: dt.date
    detail: str | None = None

    def as_history_event(self) -> PermitEvent:
        return PermitEvent(self.permit_number, self.kind, self.at, self.status, self.detail)

    def to_wire(self) -> dict[str, Any]:
        return {
            "eventId": self.event_id,
            "permitNumber": self.permit_number,
            "kind": self.kind.value,
            "at": self.at.isoformat(),
            "status": self.status.value,
            "medium": self.medium.value,
            "validUntil": self.valid_until.isoformat(),
            "detail": self.detail,
        }

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> PermitChange:
        """Raises ValueError (or KeyError/TypeError) on anything but a well-formed change."""
        at = dt.datetime.fromisoformat(str(data["at"]))
        if at.tzinfo is None:
            raise ValueError("`at` must carry a UTC offset")
        kind = PermitEventKind(data["kind"])
        if kind not in CHANGE_KINDS:
            raise ValueError(f"{kind.value} is not a change the WMS pushes")
        detail = data.get("detail")
        if detail is not None and not isinstance(detail, str):
            raise ValueError("`detail` must be a string")
        return cls(
            event_id=_text(data, "eventId", 128),
            permit_number=_text(data, "permitNumber", 18),
            kind=kind,
            at=at,
            status=PermitStatus(data["status"]),
            medium=PermitMedium(data["medium"]),
            valid_until=dt.date.fromisoformat(str(data["validUntil"])),
            detail=detail[:500] if detail else None,
        )

    def encode(self) -> bytes:
        return orjson.dumps(self.to_wire())

    @classmethod
    def decode(cls, raw: bytes) -> PermitChange:
        return cls.from_wire(orjson.loads(raw))


def _text(data: Mapping[str, Any], key: str, limit: int) -> str:
    value = data[key]
    if not isinstance(value, str) or not 0 < len(value) <= limit:
        raise ValueError(f"`{key}` must be a string of 1 to {limit} characters")
    return value


class EventBus(Protocol):
    async def publish(self, change: PermitChange) -> None: ...
    def subscribe(self) -> AsyncIterator[PermitChange]: ...
    def add_listener(self, listener: _Listener) -> None: ...


class _Listener(Protocol):
    async def __call__(self, change: PermitChange) -> None: ...


class _LocalFanOut:
    """Hands every change to this process's listeners, then to each subscriber's queue."""

    def __init__(self) -> None:
        self._queues: set[asyncio.Queue[PermitChange]] = set()
        self._listeners: list[_Listener] = []

    def add_listener(self, listener: _Listener) -> None:
        self._listeners.append(listener)

    async def deliver(self, change: PermitChange) -> None:
        for listener in self._listeners:
            try:
                await listener(change)
            except Exception:  # one broken listener must not starve the others
                log.exception("event listener failed for event %s", change.event_id)
        for queue in list(self._queues):
            if queue.full():
                queue.get_nowait()  # drop the oldest: a stalled subscriber must not block
            queue.put_nowait(change)

    async def subscribe(self) -> AsyncIterator[PermitChange]:
        queue: asyncio.Queue[PermitChange] = asyncio.Queue(_QUEUE_SIZE)
        self._queues.add(queue)
        try:
            while True:
                yield await queue.get()
        finally:
            self._queues.discard(queue)

    @property
    def subscribers(self) -> int:
        return len(self._queues)


class StreamEventBus(_LocalFanOut):
    """`permit-event` entries of the shared-state stream, handed to this process's listeners
    and subscribers as the process's reader of the stream meets them."""

    def __init__(self, shared: SharedState) -> None:
        super().__init__()
        self._shared = shared
        shared.on(PERMIT_EVENT, self._on_entry)

    async def publish(self, change: PermitChange) -> None:
        """Raises `EventBusUnavailable` if the stream did not take it (the WMS is told to send
        the event again)."""
        try:
            await self._shared.append(PERMIT_EVENT, {"change": change.encode()})
        except KeyValueUnavailable as exc:
            raise EventBusUnavailable(str(exc)) from None

    async def _on_entry(self, fields: Mapping[str, bytes]) -> None:
        try:
            change = PermitChange.decode(fields["change"])
        except (ValueError, KeyError, TypeError):
            log.warning("ignored a malformed permit event on the shared-state stream")
            return
        await self.deliver(change)


class EventBusUnavailable(Exception):
    """The bus could not take the event; nothing was published."""


class EventRejected(Exception):
    """The pushed event is not a genuine, current WMS event; nothing was done with it."""


class EventSigningKeys(Protocol):
    async def qr_key(self, kid: str) -> Key | None: ...


async def verify_permit_event(
    signed: str, keys: EventSigningKeys, *, now: dt.datetime, max_age_seconds: float
) -> PermitChange:
    """The change a WMS-signed event carries; `EventRejected` says why it is not acceptable.

    Unsigned (`alg: none`), HMAC, wrong `typ`, unknown key, bad signature, stale or future
    `iat`, claims that disagree with the event body, an ill-formed permit number: all refused.
    Replays are the caller's to refuse, by `event_id`, with a shared store.
    """
    if len(signed) > MAX_EVENT_BYTES or not signed.isascii():
        raise EventRejected("the event must be a compact JWS of at most 8 KiB")
    try:
        compact = jws.extract_compact(signed.encode("ascii"))
    except (JoseError, ValueError):
        raise EventRejected("the event is not a compact JWS") from None
    header = compact.headers()
    kid = header.get("kid")
    if header.get("alg") not in EVENT_ALGORITHMS or header.get("typ") != EVENT_TYPE:
        raise EventRejected(f"the event must be signed with ES256 and typed {EVENT_TYPE}")
    key = await keys.qr_key(kid) if isinstance(kid, str) else None
    if key is None:
        raise EventRejected("the event is not signed with a key the WMS publishes")
    try:
        jws.deserialize_compact(signed, key, algorithms=list(EVENT_ALGORITHMS))
        claims = orjson.loads(compact.payload)
    except (JoseError, ValueError):
        raise EventRejected("the event's signature does not verify") from None
    if not isinstance(claims, dict) or claims.get("iss") != EVENT_ISSUER:
        raise EventRejected("the event was not issued by the WMS")
    issued = claims.get("iat")
    if not isinstance(issued, int) or not (
        -60 <= now.timestamp() - issued <= max_age_seconds
    ):
        raise EventRejected("the event is too old, or from the future")
    try:
        change = PermitChange.from_wire(claims["event"])
        validate_permit_number(change.permit_number)
    except (ValueError, KeyError, TypeError, AttributeError, InvalidIdentifier):
        raise EventRejected("the event's body is not a well-formed permit change") from None
    if claims.get("jti") != change.event_id or claims.get("sub") != change.permit_number:
        raise EventRejected("the event's claims do not match its body")
    return change
