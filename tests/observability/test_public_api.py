"""The package exports what it documents, and depends on none of the packages that use it."""

from __future__ import annotations

import subprocess
import sys

import observability.audit as audit


def test_all_is_sorted_and_importable() -> None:
    assert audit.__all__ == sorted(audit.__all__)
    for name in audit.__all__:
        assert not name.startswith("_")
        assert getattr(audit, name) is not None


def test_audit_imports_none_of_the_packages_that_use_it() -> None:
    users = "{'hub', 'schema', 'auth', 'connectors'}"
    probe = (
        "import sys, observability.audit; "
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & {users}))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)

    assert out.stdout.strip() == "[]"
