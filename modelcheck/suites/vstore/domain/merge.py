"""Three-way merges of trees and the DDL that moves a working tree to the merged one."""

from __future__ import annotations

from collections.abc import Mapping

from modelcheck.suites.vstore.domain import types
from modelcheck.suites.vstore.domain.ddl import (
    CANNOT_CAST,
    NOT_NULL_VIOLATION,
    check_unique,
    default_of,
)
from modelcheck.suites.vstore.domain.errors import DomainError, ddl_error
from modelcheck.suites.vstore.domain.tree import Column, Index, Table, Tree

_ABSENT = object()


def _conflict(what: str) -> DomainError:
    return DomainError("merge_conflict", message=f"both sides changed {what}")


def _pick(base: object, ours: object, theirs: object, what: str) -> object:
    if ours == theirs:
        return ours
    if ours == base:
        return theirs
    if theirs == base:
        return ours
    raise _conflict(what)


def _columns_key(table: Table | None) -> object:
    return _ABSENT if table is None else table.columns


def _merge_columns(base: Table | None, ours: Table, theirs: Table) -> tuple[Column, ...]:
    def definition(table: Table | None, name: str) -> object:
        column = None if table is None else table.column(name)
        return _ABSENT if column is None else (column.type, column.nullable, column.default)

    order = [c.name for c in ours.columns]
    order += [c.name for c in theirs.columns if ours.column(c.name) is None]
    merged: list[Column] = []
    for name in order:
        picked = _pick(
            definition(base, name),
            definition(ours, name),
            definition(theirs, name),
            f"column {name!r} of {ours.name!r}",
        )
        if picked is _ABSENT:
            continue
        source = ours.column(name)
        if source is None or (source.type, source.nullable, source.default) != picked:
            source = theirs.column(name)
        assert source is not None
        merged.append(source)
    return tuple(merged)


def merge_trees(base: Tree, ours: Tree, theirs: Tree) -> Tree:
    """Three-way merge per table, per column and per index; raise merge_conflict."""
    tables: dict[str, Table] = {}
    for name in sorted({*base.tables, *ours.tables, *theirs.tables}, key=str.encode):
        b, o, t = base.tables.get(name), ours.tables.get(name), theirs.tables.get(name)
        kb, ko, kt = _columns_key(b), _columns_key(o), _columns_key(t)
        if ko in (kt, kb) or kt == kb:
            picked = _pick(kb, ko, kt, f"table {name!r}")
            if picked is not _ABSENT:
                tables[name] = Table(name, picked)  # type: ignore[arg-type]
            continue
        if o is None or t is None:
            raise _conflict(f"table {name!r} (removed on one side)")
        tables[name] = Table(name, _merge_columns(b, o, t))
    indexes: dict[str, Index] = {}
    for name in sorted({*base.indexes, *ours.indexes, *theirs.indexes}, key=str.encode):
        picked = _pick(
            base.indexes.get(name, _ABSENT),
            ours.indexes.get(name, _ABSENT),
            theirs.indexes.get(name, _ABSENT),
            f"index {name!r}",
        )
        if isinstance(picked, Index):
            indexes[name] = picked
    for index in indexes.values():
        table = tables.get(index.table)
        if table is None or any(table.column(c) is None for c in index.columns):
            raise _conflict(f"index {index.name!r} (its table or column is gone)")
        if index.name in tables:
            raise _conflict(f"name {index.name!r} (a table and an index)")
    return Tree(tables, indexes)


def _rebuild(old: Table | None, new: Table) -> Table:
    """``CREATE TABLE`` the merged table and copy rows with ``old::newtype`` casts."""
    if old is None:
        return Table(new.name, new.columns)
    sources: list[tuple[int, types.SqlType, types.SqlType] | None] = []
    for column in new.columns:
        position = next((i for i, c in enumerate(old.columns) if c.name == column.name), None)
        if position is None:
            sources.append(None)
            continue
        source = types.parse_type(old.columns[position].type)
        target = types.parse_type(column.type)
        if not types.cast_exists(source, target):
            raise ddl_error(CANNOT_CAST, f"cannot cast type {source} to {target}")
        sources.append((position, source, target))
    rows = []
    for row in old.rows:
        values = tuple(
            default_of(column) if src is None else types.cast_value(row[src[0]], src[1], src[2])
            for column, src in zip(new.columns, sources, strict=True)
        )
        for value, column in zip(values, new.columns, strict=True):
            if value is None and not column.nullable:
                raise ddl_error(NOT_NULL_VIOLATION, f"null value in column {column.name!r}")
        rows.append(values)
    return Table(new.name, new.columns, tuple(rows))


def apply_tree(current: Tree, merged: Tree) -> Tree:
    """Move a working tree (with rows) to a merged structure, in the documented DDL order."""
    indexes = {n: i for n, i in current.indexes.items() if merged.indexes.get(n) == i}
    tables = {n: t for n, t in current.tables.items() if n in merged.tables}
    for name in sorted(merged.tables, key=str.encode):
        target = merged.tables[name]
        existing = tables.get(name)
        if existing is not None and existing.columns == target.columns:
            continue
        tables[name] = _rebuild(existing, target)
        indexes = {n: i for n, i in indexes.items() if i.table != name}
    for name in sorted(merged.indexes, key=str.encode):
        if name in indexes:
            continue
        index = merged.indexes[name]
        check_unique(tables[index.table], index)
        indexes[name] = index
    return Tree(tables, indexes)


def is_ancestor(commits: Mapping[str, tuple[str, ...]], ancestor: str, descendant: str) -> bool:
    """True when ``ancestor`` is ``descendant`` or reachable from it through parents."""
    return ancestor in ancestors(commits, descendant)


def ancestors(commits: Mapping[str, tuple[str, ...]], start: str) -> set[str]:
    seen = {start}
    stack = [start]
    while stack:
        for parent in commits[stack.pop()]:
            if parent not in seen:
                seen.add(parent)
                stack.append(parent)
    return seen
