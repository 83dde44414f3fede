"""The final table: every measured row, then the ratios and targets of issues 6, 7 and 8."""

from __future__ import annotations

import statistics
from itertools import pairwise

from bench._driver import Figures
from bench._profile import summarise
from bench._scenarios import Results

_WIDTH = 50


def _row(name: str, figures: Figures | None, value: str, note: str) -> str:
    if figures is not None:
        cells = (f"{figures.rps:9.0f} {figures.p50_ms:9.2f} {figures.p99_ms:9.2f}"
                 f" {figures.errors:>7}/{figures.requests:<7}")
    else:
        cells = f"{value:44}"
    if figures is not None and figures.other_cpu >= 0.05:
        note += f"  [other load {figures.other_cpu:.0%} of a core]"
    if figures is not None and figures.server_cpu_ms is not None:
        note += f"; server CPU {figures.server_cpu_ms:.2f} ms/request"
    return f"{name:{_WIDTH}} {cells}  {note}"


def _ratio(results: Results, top: str, bottom: str) -> float | None:
    a, b = results.figures.get(top), results.figures.get(bottom)
    if a is None or b is None or not b.rps:
        return None
    return a.rps / b.rps


def _mark(ok: bool) -> str:
    return "met" if ok else "NOT met"


def _cpu_line(results: Results, prefixes: tuple[str, ...], labels: tuple[str, ...]) -> str:
    """Median server CPU per request of each series of turns: on a shared machine, where other
    load moves every req/s figure, what each server spends on a request moves much less."""
    medians = []
    for prefix, label in zip(prefixes, labels, strict=True):
        cpu = [f.server_cpu_ms for k, f in results.figures.items()
               if k.startswith(prefix) and f.server_cpu_ms]
        if cpu:
            medians.append(f"{label} {statistics.median(cpu):.2f}")
    if len(medians) < 2:
        return ""
    return "  server CPU per request, median of the turns (ms): " + ", ".join(medians)


def targets(results: Results) -> list[str]:
    lines: list[str] = []
    f = results.figures
    hub = f.get("validity")
    turns = results.extra.get("turn_ratios")
    if turns:
        # The fair figure, where it was measured: the two servers in turn, minutes apart at most.
        ratio = statistics.median(turns)
        each = ", ".join(f"{r:.2f}" for r in turns)
        lines.append(f"hub validity / bare Apollo Server 5, in turns {ratio:6.2f} x"
                     f"  (target >= 0.4: {_mark(ratio >= 0.4)}; median of {len(turns)}"
                     f" Apollo-then-hub pairs: {each})")
    same = results.extra.get("same_work_ratios")
    if same:
        ratio = statistics.median(same)
        each = ", ".join(f"{r:.2f}" for r in same)
        lines.append(f"hub validity / Apollo doing the same work     {ratio:6.2f} x"
                     f"  (target >= 1.0: {_mark(ratio >= 1.0)}; median of {len(same)} pairs:"
                     f" {each})")
    cpu = _cpu_line(results, ("turn-hub-", "turn-samework-", "turn-apollo-"),
                    ("hub", "same-work Apollo", "bare Apollo"))
    if cpu:
        lines.append(cpu)
    embedded = results.extra.get("embedded_ratios")
    if embedded:
        ratio = statistics.median(embedded)
        each = ", ".join(f"{r:.2f}" for r in embedded)
        lines.append(f"hub demo / Apollo Server 5, 1 process each   {ratio:6.2f} x"
                     f"  (target >= 0.25: {_mark(ratio >= 0.25)}; median of {len(embedded)}"
                     f" pairs in turns: {each})")
        cpu = _cpu_line(results, ("embedded-hub-", "embedded-apollo-"), ("hub demo", "Apollo"))
        if cpu:
            lines.append(cpu)
    if hub is not None:
        for peer, label in (("apollo", "Apollo Server 5, same workers"),
                            ("apollo-1", "Apollo Server 5, 1 process"),
                            ("starlette", "raw Starlette, same workers")):
            ratio = _ratio(results, "validity", peer)
            if ratio is not None:
                target = ""
                if peer == "apollo":
                    target = (f"  (target >= 0.4: {_mark(ratio >= 0.4)})" if not turns else
                              "  (runs minutes apart: the machine's drift is in it)")
                lines.append(f"hub validity / {label:30} {ratio:6.2f} x{target}")
        if "ceiling" in f:
            lines.append(f"generator ceiling / hub validity             "
                         f"{f['ceiling'].rps / hub.rps:6.1f} x   (generator used"
                         f" {hub.generator_cpu:.0%} of a core while driving the hub)")
    if "half" in f:
        half = f["half"]
        lines.append(f"validity p99 at half peak                    {half.p99_ms:6.1f} ms"
                     f" (target < 25 ms: {_mark(half.p99_ms < 25)})")
        peak = f.get("validity")
        if peak is not None and half.machine_busy and peak.machine_busy:
            # At half the rate, requests batch less (audit commits, event-loop wakeups), so
            # each costs more: this says how near the machine was to full at half the peak.
            cpu = (f"; hub CPU {half.server_cpu_ms:.2f} against {peak.server_cpu_ms:.2f}"
                   " ms/request at the peak" if half.server_cpu_ms and peak.server_cpu_ms else "")
            lines.append(f"  machine busy at half peak {half.machine_busy:.0%} of all cores"
                         f" (at the peak {peak.machine_busy:.0%}){cpu}")
    if "batch" in f:
        p50 = f["batch"].p50_ms
        lines.append(f"batch of 500 p50                             {p50:6.1f} ms"
                     f" (target < 150 ms: {_mark(p50 < 150)})")
    growth = results.extra.get("growth")
    if growth and len(growth) >= 2:
        sizes = sorted(growth)
        flat = all(growth[b] <= growth[a] * 1.10 for a, b in pairwise(sizes))
        per = " -> ".join(f"{growth[s] * 1e6:.0f}" for s in sizes)
        lines.append(f"cost growth, µs per permit at {'/'.join(f'{s:,}' for s in sizes)}:"
                     f" {per}  (flat or falling: {_mark(flat)})")
    faults = results.extra.get("faults")
    if faults:
        up, hung = faults["up"].p50_ms, faults["hung"].p50_ms
        lines.append(f"issue 6: validity p50, card system hung / up  {hung / up:6.2f} x"
                     f"  ({hung:.2f} ms / {up:.2f} ms)")
    if "tracing-on" in f and "tracing-off" in f:
        ratios = results.extra.get("tracing_ratios") or [
            _ratio(results, "tracing-on", "tracing-off") or 0.0
        ]
        ratio = statistics.median(ratios)
        sink = results.extra.get("sink", {})
        each = ", ".join(f"{r:.2f}" for r in ratios)
        defaults = results.extra.get("tracing_default_ratios") or []
        if defaults:
            default = statistics.median(defaults)
            lines.append(f"validity throughput, tracing at the default ratio / off {default:6.2f} x"
                         f"  (aim >= 0.95: {_mark(default >= 0.95)}; median of"
                         f" {len(defaults)}: {', '.join(f'{r:.2f}' for r in defaults)})")
        lines.append(f"validity throughput, tracing at ratio 1.0 / off {ratio:6.2f} x"
                     f"  (goal >= 0.85: {_mark(ratio >= 0.85)}; median of {len(ratios)} off/on"
                     f" pairs: {each}; sink received {sink.get('posts', '?')} exports,"
                     f" {sink.get('bytes', 0) / 1e6:.1f} MB)")
    servers = results.extra.get("servers")
    if servers and servers.get("uvicorn"):
        for key, label in (("granian", "granian / uvicorn as hub serve"),
                           ("uvicorn-quiet", "uvicorn without / with its access log")):
            pairs = [a / b for a, b in zip(servers[key], servers["uvicorn"], strict=True) if b]
            if pairs:
                each = ", ".join(f"{x:.2f}" for x in pairs)
                lines.append(f"{label:44} {statistics.median(pairs):6.2f} x"
                             f"  (median of {len(pairs)} turns: {each})")
        best = max(servers, key=lambda k: statistics.median(servers[k]))
        lines.append(f"highest median req/s in turns: {best}")
    audit = results.extra.get("audit")
    if audit:
        for label, group, plain in audit:
            lines.append(f"audit appends/s ({label:10}) group commit {group:8.0f}"
                         f"  per append {plain:8.0f}  ratio {group / plain:5.1f} x")
    return lines


def render(results: Results, header: str) -> str:
    out = ["", "=" * 118, header, "=" * 118]
    out.append(f"{'scenario':{_WIDTH}} {'req/s':>9} {'p50 ms':>9} {'p99 ms':>9}"
               f" {'errors/requests':>15}  notes")
    out.append("-" * 118)
    out += [_row(r.scenario, r.figures, r.value, r.note) for r in results.rows]
    lines = targets(results)
    if lines:
        out += ["-" * 118, "ratios and targets:"]
        out += ["  " + line for line in lines]
    if results.notes:
        out += ["-" * 118, "notes:"]
        out += ["  " + note for note in results.notes]
    profile = results.extra.get("profile")
    if profile is not None:
        out += ["-" * 118, f"profile of validity (raw stacks: {profile}):"]
        out += summarise(profile)
    out.append("=" * 118)
    return "\n".join(out)
