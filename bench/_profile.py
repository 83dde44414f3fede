"""Summarise py-spy's raw (collapsed) stacks: where a hub worker spends its CPU.

Each line of the raw format is `frame;frame;...;leaf count`, a frame being
`function (path:line)`. Self time goes to the leaf; inclusive time to every distinct function
on the stack; "area" sums self time by package, which is what a hot-path decision needs first.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

_FRAME = re.compile(r"^(?P<function>.*?) \((?P<path>[^()]*?)(?::\d+)?\)$")

_ROOT = str(Path(__file__).resolve().parent.parent) + "/"
_PROJECT = ("hub", "schema", "auth", "connectors", "observability", "bench")
_LIBRARIES = {  # first component of a path under site-packages -> what to call it
    "graphql": "graphql-core", "strawberry": "strawberry", "starlette": "starlette",
    "uvicorn": "uvicorn", "sqlalchemy": "sqlalchemy", "asyncpg": "asyncpg", "redis": "redis-py",
    "joserfc": "joserfc", "authlib": "authlib", "cryptography": "cryptography",
    "opentelemetry": "opentelemetry", "httpx": "httpx", "httpcore": "httpcore",
    "anyio": "anyio", "pydantic": "pydantic", "orjson": "orjson", "uvloop": "uvloop",
    "granian": "granian", "prometheus_client": "prometheus-client",
}


def _split(frame: str) -> tuple[str, str]:
    match = _FRAME.match(frame)
    if match is None:
        return frame, ""
    return match.group("function"), match.group("path")


def _relative(path: str) -> str:
    """The path from its package on: project files from the repository root, libraries from
    site-packages, the standard library from its lib directory (py-spy may give any of these
    absolute or relative to the worker's working directory)."""
    if "site-packages/" in path:  # first: the virtualenv may live inside the repository
        return path.split("site-packages/", 1)[1]
    if "lib/python3." in path:
        return path.split("lib/python3.", 1)[1].split("/", 1)[-1]
    if path.startswith(_ROOT):
        return path[len(_ROOT) :]
    return path


def _short(function: str, path: str) -> str:
    return f"{function} ({_relative(path)})" if path else function


def area_of(path: str) -> str:
    relative = _relative(path)
    first = relative.split("/", 1)[0]
    if "site-packages/" in path:
        return _LIBRARIES.get(first, first)
    if "lib/python3." in path:
        return f"{first.removesuffix('.py')} (stdlib)"
    return first + "/" if first in _PROJECT else "other"


def _waiting(path: str) -> bool:
    """A helper thread blocked on a lock or a queue (py-spy's idle filter misses these)."""
    return path.endswith(("/threading.py", "/queue.py", "/selectors.py"))


def summarise(raw: Path, top: int = 12) -> list[str]:
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    areas: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_split(f) for f in stack.split(";")]
        frames = [f for f in frames if f[1]]  # drop the process and thread pseudo-frames
        if not frames or _waiting(frames[-1][1]):
            continue
        total += count
        leaf = frames[-1]
        self_time[_short(*leaf)] += count
        areas[area_of(leaf[1])] += count
        project = {_short(*f) for f in frames if area_of(f[1]).endswith("/")}
        for name in project:
            if not name.startswith(("main (", "_app (", "serve_uvicorn (")):
                inclusive[name] += count
    if not total:
        return ["  (no samples)"]
    lines = [f"  {total} samples of one worker (py-spy, 200 Hz, idle and waiting threads excluded)",
             "  self time by area (where the CPU is spent):"]
    lines += [f"    {n / total:6.1%}  {name}" for name, n in areas.most_common(top)]
    lines.append("  self time by function:")
    lines += [f"    {n / total:6.1%}  {name}" for name, n in self_time.most_common(top)]
    lines.append("  inclusive time of the project's functions (the request path's steps):")
    lines += [f"    {n / total:6.1%}  {name}" for name, n in inclusive.most_common(top + 10)]
    return lines
