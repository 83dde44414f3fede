"""A subject's timeline as a stacked bar chart: accesses per day, one colour per agency.

Only geometry is computed here; the template draws it as inline SVG (no script, no outside
asset). Colours are CSS classes (`series-0`..`series-7`, cycling) in the console's stylesheet.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["Bar", "Timeline", "timeline"]

WIDTH = 760
HEIGHT = 260
_LEFT, _RIGHT, _TOP, _BOTTOM = 40, 10, 10, 40
_SERIES = 8
UNKNOWN_AGENCY = "(no agency)"


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    series: int
    title: str  # the tooltip: day, agency, count


@dataclass(frozen=True)
class Tick:
    x: float
    y: float
    label: str


@dataclass(frozen=True)
class Timeline:
    width: int
    height: int
    bars: tuple[Bar, ...]
    day_ticks: tuple[Tick, ...]
    count_ticks: tuple[Tick, ...]
    legend: tuple[tuple[int, str, int], ...]  # (series, agency, total)
    total: int
    peak: int


def timeline(
    accesses: Iterable[tuple[dt.datetime, str | None]], first_day: dt.date, last_day: dt.date
) -> Timeline:
    """The chart of `accesses` (time, agency), `first_day` to `last_day` inclusive (UTC days)."""
    per_day: dict[dt.date, Counter[str]] = {}
    totals: Counter[str] = Counter()
    for moment, agency in accesses:
        day = moment.astimezone(dt.UTC).date()
        if not first_day <= day <= last_day:
            continue
        name = agency or UNKNOWN_AGENCY
        per_day.setdefault(day, Counter())[name] += 1
        totals[name] += 1
    agencies = sorted(totals, key=lambda name: (-totals[name], name))
    series = {name: index % _SERIES for index, name in enumerate(agencies)}
    days = (last_day - first_day).days + 1
    peak = max((sum(counts.values()) for counts in per_day.values()), default=0)
    plot_w, plot_h = WIDTH - _LEFT - _RIGHT, HEIGHT - _TOP - _BOTTOM
    slot = plot_w / days
    scale = plot_h / peak if peak else 0.0
    bars: list[Bar] = []
    for day, counts in sorted(per_day.items()):
        x = _LEFT + (day - first_day).days * slot + slot * 0.1
        base = float(_TOP + plot_h)
        for name in agencies:  # the same stacking order every day
            count = counts.get(name, 0)
            if not count:
                continue
            height = count * scale
            base -= height
            bars.append(Bar(round(x, 2), round(base, 2), round(slot * 0.8, 2), round(height, 2),
                            series[name], f"{day.isoformat()}: {name}: {count}"))
    step = max(1, days // 8)
    day_ticks = tuple(
        Tick(round(_LEFT + offset * slot + slot / 2, 2), HEIGHT - _BOTTOM + 16,
             (first_day + dt.timedelta(days=offset)).strftime("%m-%d"))
        for offset in range(0, days, step)
    )
    count_ticks = tuple(
        Tick(_LEFT - 6, round(_TOP + plot_h - value * scale, 2) + 4, str(value))
        for value in _count_marks(peak)
    )
    legend = tuple((series[name], name, totals[name]) for name in agencies)
    return Timeline(WIDTH, HEIGHT, tuple(bars), day_ticks, count_ticks, legend,
                    sum(totals.values()), peak)


def _count_marks(peak: int) -> list[int]:
    if peak == 0:
        return [0]
    step = max(1, -(-peak // 4))
    return list(range(0, peak + 1, step)) + ([peak] if peak % step else [])
