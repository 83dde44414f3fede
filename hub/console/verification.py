"""'Verify now': the chain verified in the background, in ranges of seq so progress can be shown.

A run walks `1..head` (the newest seq when it starts) in ranges with the audit log's own
verifier; the last range is left open so the records appended meanwhile and the chain head are
checked too. Each range's anchor is the stored hash of the record before it, which the
previous range has just verified, so the ranges together check exactly what one pass would.

The run's state is kept in the shared store (every instance's status page shows it) and in this
process (which owns the task). A run whose state has not moved for `_STALE_SECONDS` (its
instance stopped) no longer blocks a new one.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import secrets
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

import orjson

from infra.kv import KeyValue
from observability.audit import AuditFilter, AuditLog

__all__ = ["Verifications", "VerifyRun"]

log = logging.getLogger("hub.console")

_CURRENT = "console:verify:current"
_LAST = "console:verify:last"
_STALE_SECONDS = 120.0
_MIN_RANGE = 200
_RANGES = 20

State = Literal["running", "ok", "broken", "failed"]


@dataclass(frozen=True)
class VerifyRun:
    id: str
    started: str
    started_by: str
    head: int  # the newest seq when the run started
    verified_to: int  # records up to this seq are verified
    checked: int
    checkpoints: int
    state: State
    updated: str
    first_bad_seq: int | None = None
    reason: str | None = None
    finished: str | None = None

    @property
    def percent(self) -> int:
        if self.state != "running":
            return 100
        return min(99, self.verified_to * 100 // self.head) if self.head else 0


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


class Verifications:
    """The runs of this process; their state in the shared store."""

    def __init__(self, kv: KeyValue, audit: AuditLog) -> None:
        self._kv = kv
        self._audit = audit
        self._tasks: set[asyncio.Task[None]] = set()

    async def current(self) -> VerifyRun | None:
        return await self._read(_CURRENT)

    async def last_finished(self) -> VerifyRun | None:
        return await self._read(_LAST)

    async def start(self, started_by: str) -> VerifyRun:
        """A new run, or the one already running (on any instance) if it is still moving."""
        running = await self.current()
        if running is not None and running.state == "running" and not _stale(running):
            return running
        newest = await self._audit.search(
            AuditFilter(), 1, subject_view=False, today=dt.date.today()
        )
        head = newest.records[0].seq if newest.records else 0
        now = _now()
        run = VerifyRun(secrets.token_hex(8), now, started_by, head, 0, 0, 0, "running", now)
        await self._write(_CURRENT, run)
        task = asyncio.create_task(self._run(run))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return run

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _run(self, run: VerifyRun) -> None:
        try:
            run = await self._walk(run)
        except Exception as exc:  # the store went away: say so, never leave it "running"
            log.warning("console: chain verification failed (%s)", type(exc).__name__)
            run = replace(run, state="failed", reason=f"verification could not finish: "
                          f"{type(exc).__name__}", updated=_now(), finished=_now())
        await self._write(_CURRENT, run)
        if run.state != "failed":
            await self._write(_LAST, run)

    async def _walk(self, run: VerifyRun) -> VerifyRun:
        size = max(_MIN_RANGE, -(-run.head // _RANGES))
        start = 1
        while True:
            end = start + size - 1
            final = end >= run.head
            result = await self._audit.verify(start, None if final else end)
            run = replace(
                run, checked=run.checked + result.checked,
                checkpoints=run.checkpoints + result.checkpoints,
                verified_to=start + result.checked - 1, updated=_now(),
            )
            if not result.ok:
                return replace(run, state="broken", first_bad_seq=result.first_bad_seq,
                               reason=result.reason, finished=_now())
            if final:
                return replace(run, state="ok", finished=_now())
            await self._write(_CURRENT, run)
            start = end + 1

    async def _read(self, key: str) -> VerifyRun | None:
        raw = await self._kv.get(key)
        if raw is None:
            return None
        values: dict[str, Any] = orjson.loads(raw)
        try:
            return VerifyRun(**values)
        except TypeError:  # written by another version of the hub: as if never run
            return None

    async def _write(self, key: str, run: VerifyRun) -> None:
        await self._kv.set(key, orjson.dumps(asdict(run)))


def _stale(run: VerifyRun) -> bool:
    updated = dt.datetime.fromisoformat(run.updated)
    return (dt.datetime.now(dt.UTC) - updated).total_seconds() > _STALE_SECONDS
