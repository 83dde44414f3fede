"""Runs the load generator (`bench._load`) in one or more processes and merges what they saw."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench._load import Spec


@dataclass
class Figures:
    """One measured run: what the final table prints."""

    requests: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: int
    statuses: dict[str, int]
    error_sample: str | None
    generator_cpu: float  # the generator's CPU time over the window, as a share of one core
    other_cpu: float = 0.0  # other processes' (not ours, not PostgreSQL/Redis), same unit
    server_cpu_ms: float | None = None  # the measured server's CPU per request, when known
    machine_busy: float | None = None  # share of all cores busy (every process), when known

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def line(self) -> str:
        text = (
            f"{self.rps:8.0f} req/s  p50 {self.p50_ms:7.2f} ms  p99 {self.p99_ms:7.2f} ms"
            f"  errors {self.errors}/{self.requests}"
            f"  (generator {self.generator_cpu:.0%} of a core)"
        )
        if self.server_cpu_ms is not None:
            text += f"  server CPU {self.server_cpu_ms:.2f} ms/request"
        if self.other_cpu >= 0.05:
            text += f"  [other load on the machine: {self.other_cpu:.0%} of a core]"
        if self.errors and self.error_sample:
            text += f"\n      first error: {self.error_sample[:200]}"
        return text


def percentile(sorted_values: list[int], share: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(share * len(sorted_values)) - 1))
    return sorted_values[index] / 1000.0  # µs -> ms


def merge(results: list[dict[str, Any]]) -> Figures:
    latencies = sorted(x for r in results for x in r["latencies_us"])
    statuses: dict[str, int] = {}
    for r in results:
        for status, count in r["statuses"].items():
            statuses[status] = statuses.get(status, 0) + count
    seconds = max(r["seconds"] for r in results)
    window = max(r["window_seconds"] for r in results)
    return Figures(
        requests=len(latencies),
        seconds=seconds,
        p50_ms=percentile(latencies, 0.50),
        p90_ms=percentile(latencies, 0.90),
        p99_ms=percentile(latencies, 0.99),
        max_ms=latencies[-1] / 1000.0 if latencies else 0.0,
        errors=sum(r["errors"] for r in results),
        statuses=statuses,
        error_sample=next((r["error_sample"] for r in results if r["error_sample"]), None),
        generator_cpu=sum(r["cpu_seconds"] for r in results) / window,
    )


async def drive(spec: Spec, processes: int = 1) -> Figures:
    """Run `spec` split over `processes` generator processes (connections, rate and bodies)."""
    processes = max(1, min(processes, spec.connections))
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        runs = []
        for i in range(processes):
            part = dataclasses.replace(
                spec,
                connections=spec.connections // processes
                + (1 if i < spec.connections % processes else 0),
                rate=spec.rate / processes if spec.rate else None,
                # `once` bodies must not be sent twice: each process takes its own share.
                bodies=spec.bodies[i::processes] if spec.once else spec.bodies,
            )
            spec_path, out_path = Path(tmp, f"spec{i}.json"), Path(tmp, f"out{i}.json")
            spec_path.write_text(json.dumps(dataclasses.asdict(part)))  # noqa: ASYNC240
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bench._load", str(spec_path), str(out_path)
            )
            runs.append((process, out_path))
        results = []
        try:
            for process, out_path in runs:
                code = await process.wait()
                if code != 0:
                    raise RuntimeError(f"the load generator exited with status {code}")
                results.append(json.loads(out_path.read_text()))
        finally:
            for process, _ in runs:
                if process.returncode is None:
                    process.kill()
                    await process.wait()
    return merge(results)
