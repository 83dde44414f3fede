"""The dependency rules between the hub's packages, checked by import-linter on every test run.

The contracts live in pyproject.toml (`[tool.importlinter]`); docs/architecture.md explains them.
The first test holds the repository to them. The others add one forbidden import to a copy of the
packages and expect the contract that forbids it to break, so a contract that stopped
biting (a renamed package, a widened ignore) fails here instead of passing silently.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def root_packages() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages: list[str] = config["tool"]["importlinter"]["root_packages"]
    return packages


def lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    """`lint-imports` over the packages in `tree`, as CI runs it (no cache written in the tree)."""
    env = {**os.environ, "PYTHONPATH": str(tree), "COLUMNS": "200", "NO_COLOR": "1"}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_packages_keep_their_dependency_rules() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("module", "forbidden", "broken"),
    [
        ("connectors", "schema", "connectors is not allowed to import schema"),
        ("schema", "hub", "schema is not allowed to import hub"),
        ("auth", "hub", "auth is not allowed to import hub"),
        ("auth", "connectors", "auth is not allowed to import connectors"),
        ("observability", "schema", "observability is not allowed to import schema"),
        ("infra", "auth", "infra is not allowed to import auth"),
        ("schema", "simulators", "schema is not allowed to import simulators"),
        ("hub.routes", "simulators", "hub is not allowed to import simulators"),
        ("connectors", "strawberry", "connectors is not allowed to import strawberry"),
    ],
)
def test_a_forbidden_import_breaks_its_contract(
    tmp_path: Path, module: str, forbidden: str, broken: str
) -> None:
    for package in root_packages():
        shutil.copytree(
            ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    parts = module.split(".")
    source = tmp_path.joinpath(*parts, "__init__.py")
    if not source.exists():
        source = tmp_path.joinpath(*parts[:-1], parts[-1] + ".py")
    source.write_text(source.read_text() + f"\nimport {forbidden}  # added by the test\n")

    result = lint_imports(tmp_path)

    assert result.returncode != 0
    assert broken in result.stdout, result.stdout
