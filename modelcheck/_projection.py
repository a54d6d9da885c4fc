"""Project fields a target does not keep out of a state, on both sides alike.

A path is dotted attribute names; ``*`` stands for every value of a mapping
(``"branches.*.version"``). The field is replaced by :data:`NOT_COMPARED`, so the
diff and the reports say so instead of passing silently.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

import attrs


class _NotCompared:
    def __repr__(self) -> str:
        return "<not compared>"


#: What a projected-out field holds (one instance, so equal on both sides).
NOT_COMPARED: Final = _NotCompared()


def project(state: Any, paths: Sequence[str]) -> Any:
    """``state`` with every field named by ``paths`` replaced by :data:`NOT_COMPARED`."""
    for path in paths:
        state = _project(state, path.split("."))
    return state


def _project(value: Any, parts: list[str]) -> Any:
    if not parts:
        return NOT_COMPARED
    head, rest = parts[0], parts[1:]
    if head == "*":
        if isinstance(value, Mapping):
            return {k: _project(v, rest) for k, v in value.items()}
        raise ValueError(f"'*' needs a mapping, found {type(value).__qualname__}")
    if attrs.has(type(value)):
        if head not in attrs.fields_dict(type(value)):
            raise ValueError(f"{type(value).__qualname__} has no field {head!r}")
        return attrs.evolve(value, **{head: _project(getattr(value, head), rest)})
    if isinstance(value, Mapping) and head in value:
        return {**value, head: _project(value[head], rest)}
    raise ValueError(f"cannot follow {head!r} into {type(value).__qualname__}")


def check_paths(state: Any, paths: Sequence[str]) -> None:
    """Raise ``ValueError`` naming a path that does not exist in ``state``'s type."""
    project(state, paths)
