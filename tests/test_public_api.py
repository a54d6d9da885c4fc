"""The public surface: ``modelcheck.__all__`` is sorted, unique, resolvable and public."""

from __future__ import annotations

import importlib
import subprocess
import sys

import modelcheck


def _isort_order(name: str) -> tuple[int, str]:
    """Constants, then classes, then functions (ruff's RUF022 order)."""
    return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)


def test_all_is_sorted_and_unique() -> None:
    assert modelcheck.__all__ == sorted(modelcheck.__all__, key=_isort_order)
    assert len(modelcheck.__all__) == len(set(modelcheck.__all__))


def test_every_name_resolves() -> None:
    for name in modelcheck.__all__:
        assert getattr(modelcheck, name, None) is not None, name
        assert name in vars(modelcheck), f"{name} is listed but not imported"


def test_no_private_name_or_module_is_listed() -> None:
    for name in modelcheck.__all__:
        assert not name.startswith("_"), name
        value = getattr(modelcheck, name)
        assert not isinstance(value, type(modelcheck)), f"{name} is a module, not an API name"


def test_import_has_no_cycle_whatever_is_imported_first() -> None:
    # The pytest plugin (modelcheck.plugin) is imported early by pytest; importing it
    # first, or the machine modules first, must work in a fresh interpreter.
    for first in (
        "modelcheck.plugin",
        "modelcheck.suites.vstore.faults",
        "modelcheck.machine",
        "modelcheck",
    ):
        code = f"import {first}; import modelcheck; assert modelcheck.FaultRules"
        subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_public_names_are_the_same_objects_as_their_modules() -> None:
    machine = importlib.import_module("modelcheck.machine")
    assert modelcheck.DifferentialMachine is machine.DifferentialMachine
