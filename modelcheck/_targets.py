"""Find a target by name (``reference``) or import path (``package.module:attr``)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, Final

from modelcheck.errors import InvalidTarget
from modelcheck.spec import Spec
from modelcheck.target import Target

#: Built-in targets by name; the value is an import path, so nothing loads until asked.
BUILTIN: Final[dict[str, str]] = {
    "reference": "modelcheck.suites.vstore.reference.target:ReferenceTarget",
    "sqlalchemy": "modelcheck.suites.vstore.sqlalchemy_target.target:SQLAlchemyTarget",
}
DEFAULT: Final = "reference"
#: The spec of a target that names none (adapters written before suites existed).
DEFAULT_SPEC: Final = "modelcheck.suites.vstore.spec:VSTORE"


def spec_of(target: object) -> Spec[Any, Any]:
    """The spec a target implements: its ``spec`` attribute, else the versioned store's."""
    declared = getattr(target, "spec", None)
    if isinstance(declared, Spec):
        return declared
    module_name, _, attr = DEFAULT_SPEC.partition(":")
    found: Spec[Any, Any] = getattr(importlib.import_module(module_name), attr)
    return found


def resolve_target(spec: str | None) -> Target:
    """A target instance from a built-in name, a mutant name, or ``module:attr``.

    ``attr`` may be a target instance, a class or a zero-argument factory.
    """
    spec = spec or DEFAULT
    path = BUILTIN.get(spec) or _mutant_path(spec) or spec
    if ":" not in path:
        known = ", ".join(sorted(BUILTIN))
        raise InvalidTarget(
            f"Unknown target {spec!r}. To fix this, either: use a built-in name ({known}), "
            "a mutant name (python -m modelcheck mutants --list), or 'package.module:attr'."
        )
    module_name, _, attr = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise InvalidTarget(
            f"Target {spec!r}: cannot import {module_name!r} ({exc}). To fix this, make the "
            "module importable (install your package or add it to PYTHONPATH)."
        ) from exc
    try:
        obj: object = getattr(module, attr)
    except AttributeError as exc:
        raise InvalidTarget(f"Target {spec!r}: {module_name!r} has no attribute {attr!r}.") from exc
    target = (
        obj() if isinstance(obj, type) or (callable(obj) and not isinstance(obj, Target)) else obj
    )
    if not isinstance(target, Target):
        raise InvalidTarget(
            f"Target {spec!r} gives {type(target).__qualname__}, which lacks the Target "
            "protocol (a name and install(conn); then the async operations of its spec). "
            "See docs/target-adapter.md."
        )
    return target


def _mutant_path(name: str) -> str | None:
    try:
        catalogue: Callable[[], dict[str, str]] = importlib.import_module(
            "modelcheck.suites.vstore.mutants"
        ).catalogue_paths
    except (ImportError, AttributeError):
        return None
    return catalogue().get(name)


def builtin_name(path: str) -> str | None:
    """The built-in or mutant name whose import path is ``path`` (for traces)."""
    for name, builtin in BUILTIN.items():
        if builtin == path:
            return name
    try:
        catalogue: Callable[[], dict[str, str]] = importlib.import_module(
            "modelcheck.suites.vstore.mutants"
        ).catalogue_paths
    except (ImportError, AttributeError):
        return None
    return next((name for name, mutant in catalogue().items() if mutant == path), None)
