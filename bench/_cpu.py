"""Who else used the CPU during a measured window: the benchmark's figures are only as good as
the machine was quiet. CPU time per process comes from /proc; the benchmark's own tree (its
servers, simulators and generators) and the shared services (PostgreSQL, Redis) are told apart
from everything else, which is reported as "other load" beside each figure.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK")
_SERVICES = frozenset({"postgres", "redis-server"})

Snapshot = dict[int, tuple[int, str, int]]  # pid -> (parent pid, command name, CPU ticks)


def snapshot() -> Snapshot:
    taken: Snapshot = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:
            continue
        name = text[text.index("(") + 1 : text.rindex(")")]
        fields = text[text.rindex(")") + 2 :].split()
        # fields[1] is the parent pid; fields[11], fields[12] are utime and stime (man 5 proc)
        taken[int(entry.name)] = (int(fields[1]), name, int(fields[11]) + int(fields[12]))
    return taken


def other_cpu_seconds(before: Snapshot, after: Snapshot, root: int | None = None) -> float:
    """CPU seconds used between the snapshots by processes neither ours nor a shared service."""
    root = root or os.getpid()
    ours: set[int] = {root}
    changed = True
    while changed:  # the descendants of `root`, however deep
        changed = False
        for pid, (parent, _, _) in after.items():
            if parent in ours and pid not in ours:
                ours.add(pid)
                changed = True
    ticks = 0
    for pid, (_, name, used) in after.items():
        if pid in ours or name in _SERVICES:
            continue
        ticks += used - before.get(pid, (0, name, 0))[2]
    return ticks / _TICK


class OtherLoad:
    """Measures other processes' CPU from `warmup` seconds after start until `stop()`."""

    def __init__(self, warmup: float) -> None:
        self._before: Snapshot | None = None
        self._started = 0.0
        self._task = asyncio.ensure_future(self._begin(warmup))

    async def _begin(self, warmup: float) -> None:
        await asyncio.sleep(warmup)
        self._started = time.monotonic()
        self._before = snapshot()

    def stop(self) -> float:
        """Share of one core used by other processes since the window opened."""
        self._task.cancel()
        if self._before is None:
            return 0.0
        elapsed = max(time.monotonic() - self._started, 1e-3)
        return other_cpu_seconds(self._before, snapshot()) / elapsed
