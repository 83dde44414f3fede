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


def _tree(taken: Snapshot, roots: set[int]) -> set[int]:
    """`roots` and their descendants, however deep."""
    tree = set(roots)
    changed = True
    while changed:
        changed = False
        for pid, (parent, _, _) in taken.items():
            if parent in tree and pid not in tree:
                tree.add(pid)
                changed = True
    return tree


def _used(before: Snapshot, after: Snapshot, pid: int) -> int:
    parent, name, used = after[pid]
    return used - before.get(pid, (parent, name, 0))[2]


def other_cpu_seconds(before: Snapshot, after: Snapshot, root: int | None = None) -> float:
    """CPU seconds used between the snapshots by processes neither ours nor a shared service."""
    ours = _tree(after, {root or os.getpid()})
    ticks = sum(
        _used(before, after, pid)
        for pid, (_, name, _) in after.items()
        if pid not in ours and name not in _SERVICES
    )
    return ticks / _TICK


def all_cpu_seconds(before: Snapshot, after: Snapshot) -> float:
    """CPU seconds used between the snapshots by every process (the benchmark's included)."""
    return sum(_used(before, after, pid) for pid in after) / _TICK


def server_cpu_seconds(before: Snapshot, after: Snapshot, servers: set[int]) -> float:
    """CPU seconds used by the `servers` process trees (a hub's workers) between the snapshots."""
    return sum(_used(before, after, pid) for pid in _tree(after, servers) if pid in after) / _TICK


class OtherLoad:
    """Measures other processes' CPU from `warmup` seconds after start until `stop()`."""

    def __init__(self, warmup: float, servers: set[int] | None = None) -> None:
        self._before: Snapshot | None = None
        self._started = 0.0
        self._servers = servers or set()
        self.server_seconds = 0.0  # CPU of the `servers` trees over the window, once stopped
        self.machine_busy = 0.0  # share of all the machine's cores in use, once stopped
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
        after = snapshot()
        self.server_seconds = server_cpu_seconds(self._before, after, self._servers)
        cores = os.cpu_count() or 1
        self.machine_busy = all_cpu_seconds(self._before, after) / elapsed / cores
        return other_cpu_seconds(self._before, after) / elapsed
