from __future__ import annotations

import inspect

import simulators


def test_all_is_sorted_and_names_only_what_exists() -> None:
    assert simulators.__all__ == sorted(simulators.__all__)
    for name in simulators.__all__:
        assert hasattr(simulators, name)


def test_every_public_function_is_exported() -> None:
    public = {
        name for name, value in vars(simulators).items()
        if not name.startswith("_") and (inspect.isfunction(value) or inspect.isclass(value))
    }
    assert public == set(simulators.__all__) - {"AGENCY_REGIONS"}
