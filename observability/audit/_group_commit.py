"""Group commit: one writer task turns the appends waiting at a moment into one transaction.

A request awaits a future; the writer takes everything queued (up to `max_batch`) and hands it to
`commit` (one transaction, then the batch's one evidence signature: see `AuditLog`), which gives
one outcome per item: the waiter gets its result, or the `AuditUnavailable` its item met (a
record the store refuses is one such item: `AuditLog` commits the rest around it). If `commit`
raises, every waiter gets `AuditUnavailable`. While one batch commits, the next one
gathers, so under load the cost of a commit (and of the chain lock) is shared by many requests,
and with one request it is no slower than committing alone. When the queue is idle the writer
runs `on_idle` (time-based checkpoints).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from observability.audit._errors import AuditUnavailable

__all__ = ["Commit", "GroupCommitter"]

_log = logging.getLogger("observability.audit")

Item = TypeVar("Item")
Result = TypeVar("Result")
# One outcome per item, in order: its result, or the error that item alone met.
Commit = Callable[[Sequence[Item]], Awaitable[Sequence[Result | AuditUnavailable]]]
_Pending = tuple[Item, "asyncio.Future[Result]"]


class GroupCommitter(Generic[Item, Result]):
    """A queue and its single writer task."""

    def __init__(
        self,
        commit: Commit[Item, Result],
        *,
        max_batch: int,
        idle_seconds: float,
        on_idle: Callable[[], Awaitable[None]],
    ) -> None:
        self._commit = commit
        self._max_batch = max_batch
        self._idle_seconds = idle_seconds
        self._on_idle = on_idle
        self._queue: asyncio.Queue[_Pending[Item, Result] | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="audit-group-commit")

    async def close(self) -> None:
        """Commit what is already queued, then stop."""
        self._closing = True
        if self._task is None:
            return
        self._queue.put_nowait(None)
        await self._task
        self._task = None

    async def submit(self, item: Item) -> Result:
        if self._closing or self._task is None or self._task.done():
            raise AuditUnavailable("audit log is not running")
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((item, future))
        return await future

    async def _run(self) -> None:
        while True:
            try:
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for makes a task a wait.
                async with asyncio.timeout(self._idle_seconds):
                    first = await self._queue.get()
            except TimeoutError:
                await self._idle()
                continue
            batch, stop = self._gather(first)
            if batch:
                await self._write(batch)
            if stop:
                return

    def _gather(
        self, first: _Pending[Item, Result] | None
    ) -> tuple[list[_Pending[Item, Result]], bool]:
        batch: list[_Pending[Item, Result]] = []
        item = first
        while item is not None:
            batch.append(item)
            if len(batch) >= self._max_batch or self._queue.empty():
                return batch, False
            item = self._queue.get_nowait()
        return batch, True

    async def _write(self, batch: list[_Pending[Item, Result]]) -> None:
        try:
            outcomes = await self._commit([item for item, _ in batch])
        except Exception as exc:  # every waiter must hear of it, and the writer must go on
            for _, future in batch:
                if not future.done():
                    future.set_exception(_fresh(exc))
            return
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            if future.done():  # the caller may have given up; the record stays
                continue
            if isinstance(outcome, AuditUnavailable):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)

    async def _idle(self) -> None:
        try:
            await self._on_idle()
        except Exception:  # retried at the next idle tick; it must not stop the writer
            _log.exception("audit: idle checkpoint failed")


def _fresh(exc: Exception) -> Exception:
    """One exception object per waiter (tracebacks would otherwise pile up on a shared one)."""
    if isinstance(exc, AuditUnavailable):
        fresh = AuditUnavailable(str(exc))
        fresh.__cause__ = exc.__cause__
        return fresh
    unexpected = AuditUnavailable(f"audit write failed: {type(exc).__name__}")
    unexpected.__cause__ = exc
    return unexpected
