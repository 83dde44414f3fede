"""The Node clients of the conformance tests (tests/npm/): installed from the npm registry with
`npm ci`, pinned by the committed package-lock.json, into a folder keyed by the lock's hash
(var/test-npm/<hash>/), so a second run installs nothing and a changed lock installs afresh.

Skipped, with the reason, only when `node`/`npm` are missing outside CI; under CI=true a
missing Node fails the test instead (CI runs on a machine that has it).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

__all__ = ["node_clients"]

SOURCE = Path(__file__).resolve().parents[1] / "npm"
ROOT = Path(__file__).resolve().parents[2]


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        reason = f"`{name}` is not installed (Node 20 and npm run the conformance clients)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return found


def node_clients() -> tuple[str, Path]:
    """`(node, folder)`: the folder holds tests/npm's scripts and their installed packages."""
    node, npm = _tool("node"), _tool("npm")
    lock = (SOURCE / "package-lock.json").read_bytes()
    folder = ROOT / "var" / "test-npm" / hashlib.sha256(lock).hexdigest()[:16]
    if not (folder / "node_modules" / ".package-lock.json").is_file():
        folder.mkdir(parents=True, exist_ok=True)
        for name in ("package.json", "package-lock.json"):
            shutil.copyfile(SOURCE / name, folder / name)
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"], cwd=folder,
            capture_output=True, text=True, timeout=300, check=False,
        )
        assert done.returncode == 0, f"npm ci failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
    for script in SOURCE.glob("*.mjs"):
        shutil.copyfile(script, folder / script.name)
    return node, folder
