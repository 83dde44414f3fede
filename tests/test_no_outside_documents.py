"""The repository documents itself: no source, test or document cites a document it does not hold.

Docstrings once cited "DESIGN section N" and a conventions file that were never in the
repository; a newcomer could not follow them. The request path and the dependency rules are in
docs/architecture.md and README.md, which is where a docstring points instead.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUTSIDE = re.compile(r"\b(DESIGN|CONVENTIONS)\b")
SKIPPED = {".git", ".venv", "var", "__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache"}


def _texts() -> list[Path]:
    found = []
    for path in ROOT.rglob("*"):
        if SKIPPED.intersection(path.relative_to(ROOT).parts) or path == Path(__file__).resolve():
            continue
        if path.suffix in {".py", ".md", ".toml"} or path.name == "Makefile":
            found.append(path)
    return found


def test_nothing_cites_a_document_outside_the_repository() -> None:
    citing = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in _texts()
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if OUTSIDE.search(line)
    ]
    assert not citing, "\n".join(citing)
