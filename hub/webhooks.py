"""Signed webhooks: permit changes pushed to the agencies that registered a URL.

Deliveries are rows in the hub database, written before the event is acknowledged to the WMS,
so that no hub instance is the only copy of a delivery still owed. Every instance runs a
`WebhookWorker` that claims due rows (`FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite has one
writer anyway), sends them and records the result: delivered, or retried with exponential
backoff and jitter until `max_attempts`, then failed. A claim is a lease: a worker that dies
mid-delivery leaves the row due again once the lease runs out, so a receiver can see one event
twice and must deduplicate on the token's `jti` (RFC 8935 makes the same demand).

A worker does not poll the database in a loop: it sleeps until the earliest PENDING row is due
(a retry's backoff, a lease running out) or until it is woken, by the instance that queued new
deliveries or by the `permit-event` entry every instance reads from the shared-state stream;
with nothing pending, it looks again only every `poll_seconds` (a safety net).

Before every attempt the URL is checked again (`auth.webhook_targets`: https, no userinfo, its
host resolving only to public addresses; http to loopback in the demo only), and the request
goes to the address that was checked, with the name in Host and TLS SNI, never through a
second resolution, and never following a redirect. A target that fails the check is not
attempted: its delivery is REFUSED at once (a name that does not resolve is retried).

The body is a Security Event Token (RFC 8417) signed by the hub's current signing key, sent
as `application/secevent+jwt`; receivers verify it against the hub's JWKS. It carries the
permit number, the kind of change and the permit's state after it, nothing about the holder.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import httpx
import orjson
from sqlalchemy import and_, func, insert, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from auth.webhook_targets import (
    WebhookTarget,
    WebhookTargetRefused,
    WebhookTargets,
    WebhookTargetUnresolved,
)
from connectors.events import PermitChange
from hub.tables import webhook_deliveries

__all__ = [
    "EVENT_URI",
    "Recipient",
    "WebhookWorker",
    "enqueue_deliveries",
]

log = logging.getLogger("hub.webhooks")

EVENT_URI = "urn:permit-hub:event:permit-changed"
SET_MEDIA_TYPE = "application/secevent+jwt"

@dataclass(frozen=True, slots=True)
class Recipient:
    client_id: str
    url: str


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


async def enqueue_deliveries(
    engine: AsyncEngine, change: PermitChange, recipients: Sequence[Recipient]
) -> int:
    """One PENDING row per recipient, due now; raises SQLAlchemyError if they cannot be written."""
    if not recipients:
        return 0
    now = _now()
    payload = orjson.dumps(change.to_wire()).decode()
    async with engine.begin() as conn:
        await conn.execute(
            insert(webhook_deliveries),
            [
                {
                    "id": str(uuid.uuid4()),
                    "event_id": change.event_id,
                    "client_id": r.client_id,
                    "url": r.url,
                    "payload": payload,
                    "state": "PENDING",
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                }
                for r in recipients
            ],
        )
    return len(recipients)


Signer = Callable[[bytes, str], Awaitable[str]]


class WebhookWorker:
    """Claims due deliveries, sends them, records the outcome. One per hub instance.

    Owns `http` (a client of its own: agencies' endpoints are not the source systems, and a
    slow receiver must not hold the upstream pool).
    """

    def __init__(
        self,
        engine: AsyncEngine,
        http: httpx.AsyncClient,
        sign: Signer,
        *,
        issuer: str,
        max_attempts: int = 8,
        backoff_seconds: float = 2.0,
        max_backoff_seconds: float = 600.0,
        timeout_seconds: float = 5.0,
        lease_seconds: float = 60.0,
        poll_seconds: float = 30.0,
        batch: int = 20,
        targets: WebhookTargets | None = None,
    ) -> None:
        self._engine = engine
        self._http = http
        self._sign = sign
        self._issuer = issuer
        self.max_attempts = max_attempts
        self._backoff = backoff_seconds
        self._max_backoff = max_backoff_seconds
        self._timeout = timeout_seconds
        self._lease = lease_seconds
        self._poll = poll_seconds
        self._batch = batch
        self._targets = targets or WebhookTargets()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="webhook-worker")

    def wake(self) -> None:
        """New deliveries may be due: look now rather than when the next known one is due."""
        self._wake.set()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._http.aclose()

    async def _run(self) -> None:
        while True:
            self._wake.clear()  # before looking: a wake-up meanwhile is not lost
            try:
                sent = await self.run_once()
                pause = 0.0 if sent else await self._until_due()  # sent: there may be more
            except asyncio.CancelledError:
                raise
            except Exception:  # the database is down, say: keep the worker alive
                log.exception("webhook delivery round failed")
                pause = 1.0
            if pause > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=pause)

    async def _until_due(self) -> float:
        """Seconds until the earliest PENDING delivery is due, at most `poll_seconds`."""
        table = webhook_deliveries
        async with self._engine.connect() as conn:
            due = await conn.scalar(
                select(func.min(table.c.next_attempt_at)).where(table.c.state == "PENDING")
            )
        if due is None:
            return self._poll
        due = due if due.tzinfo else due.replace(tzinfo=dt.UTC)  # SQLite: naive, in UTC
        return min(self._poll, max(0.01, (due - _now()).total_seconds()))

    async def run_once(self) -> int:
        """Claim and send one batch of due deliveries; how many were attempted."""
        claimed = await self._claim()
        if claimed:
            await asyncio.gather(*(self._deliver(*row) for row in claimed))
        return len(claimed)

    async def _claim(self) -> list[tuple[str, str, str, str, int]]:
        now = _now()
        table = webhook_deliveries
        due = (
            select(table.c.id, table.c.event_id, table.c.url, table.c.payload, table.c.attempts)
            .where(and_(table.c.state == "PENDING", table.c.next_attempt_at <= now))
            .order_by(table.c.next_attempt_at)
            .limit(self._batch)
            .with_for_update(skip_locked=True)
        )
        async with self._engine.begin() as conn:
            rows = (await conn.execute(due)).all()
            if rows:
                await conn.execute(
                    update(table)
                    .where(table.c.id.in_([r.id for r in rows]))
                    .values(next_attempt_at=now + dt.timedelta(seconds=self._lease))
                )
        return [(r.id, r.event_id, r.url, r.payload, r.attempts) for r in rows]

    async def _deliver(
        self, delivery_id: str, event_id: str, url: str, payload: str, attempts: int
    ) -> None:
        attempts += 1
        try:
            target = await self._targets.check(url)
        except WebhookTargetUnresolved:
            status = "unresolved"
        except WebhookTargetRefused as exc:  # final: no later attempt would be allowed either
            log.warning("webhook %s (delivery %s) refused: %s", event_id, delivery_id, exc)
            await self._record(
                delivery_id, {"attempts": attempts, "state": "REFUSED", "last_status": exc.brief}
            )
            return
        else:
            status = await self._send(event_id, url, target, orjson.loads(payload))
        values: dict[str, object] = {"attempts": attempts, "last_status": status}
        if status.isdigit() and 200 <= int(status) < 300:
            values |= {"state": "DELIVERED", "delivered_at": _now()}
        elif attempts >= self.max_attempts:
            values |= {"state": "FAILED"}
            log.warning("webhook %s to %s failed for good: %s", event_id, url, status)
        else:
            values |= {"next_attempt_at": _now() + dt.timedelta(seconds=self.delay(attempts))}
        await self._record(delivery_id, values)

    async def _record(self, delivery_id: str, values: dict[str, object]) -> None:
        try:
            async with self._engine.begin() as conn:
                await conn.execute(
                    update(webhook_deliveries)
                    .where(webhook_deliveries.c.id == delivery_id)
                    .values(**values)
                )
        except SQLAlchemyError:
            log.exception("could not record webhook delivery %s", delivery_id)

    def delay(self, attempts: int) -> float:
        """Exponential backoff with full jitter (AWS architecture blog), capped."""
        ceiling = min(self._max_backoff, self._backoff * 2 ** (attempts - 1))
        return random.uniform(ceiling / 2, ceiling)

    async def _send(
        self, event_id: str, url: str, target: WebhookTarget, change: dict[str, object]
    ) -> str:
        claims = {
            "iss": self._issuer,
            "jti": event_id,
            "iat": int(time.time()),
            "aud": url,
            "events": {EVENT_URI: change},
        }
        token = await self._sign(orjson.dumps(claims), "secevent+jwt")
        headers = {
            "host": target.authority,
            "content-type": SET_MEDIA_TYPE,
            "accept": "application/json",
            # The pool knows connections by address: one must not carry another name's request.
            "connection": "close",
        }
        try:
            response = await self._http.post(
                target.pinned(),  # the checked address: no second resolution
                content=token.encode(),
                headers=headers,
                timeout=self._timeout,
                follow_redirects=False,
                extensions={"sni_hostname": target.host} if target.url.scheme == "https" else {},
            )
        except httpx.HTTPError as exc:
            return type(exc).__name__
        return str(response.status_code)
