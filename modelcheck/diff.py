"""Render the difference between two snapshots path by path, short and readable.

``branches['feat'].head: model='c1f…' db='c9a…'`` — one line per differing leaf, so
the first line usually names the bug.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import attrs

_MISSING = object()
_MAX_VALUE = 120


def _show(value: Any, width: int | None = _MAX_VALUE) -> str:
    if value is _MISSING:
        return "<absent>"
    text = repr(value)
    return text if width is None or len(text) <= width else text[: width - 1] + "…"


def differences(model: Any, db: Any, path: str = "") -> Iterator[tuple[str, Any, Any]]:
    """Yield ``(path, model value, db value)`` for every differing leaf."""
    if model == db:
        return
    if attrs.has(type(model)) and type(model) is type(db):
        for field in attrs.fields(type(model)):
            if not field.eq:
                continue
            yield from differences(
                getattr(model, field.name), getattr(db, field.name), f"{path}.{field.name}"
            )
        return
    if isinstance(model, Mapping) and isinstance(db, Mapping):
        for key in [*model, *(k for k in db if k not in model)]:
            yield from differences(
                model.get(key, _MISSING), db.get(key, _MISSING), f"{path}[{key!r}]"
            )
        return
    if (
        isinstance(model, tuple)
        and isinstance(db, tuple)
        and len(model) == len(db)
        and not any(isinstance(v, (str, int)) for v in (*model, *db))
    ):
        for i, (m, d) in enumerate(zip(model, db, strict=True)):
            yield from differences(m, d, f"{path}[{i}]")
        return
    yield (path, model, db)


def render(model: Any, db: Any, *, limit: int | None = 20, width: int | None = _MAX_VALUE) -> str:
    """At most ``limit`` lines of ``path: model=… db=…``, values cut at ``width``
    characters (``None``: every line, whole values, as a trace keeps them)."""
    lines = []
    for n, (path, m, d) in enumerate(differences(model, db)):
        if n == limit:
            lines.append("  … more differences omitted")
            break
        lines.append(f"  {path.lstrip('.')}: model={_show(m, width)} db={_show(d, width)}")
    return "\n".join(lines)
