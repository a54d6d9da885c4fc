"""Working trees: read from the live catalog, stored as ``jsonb``, hashed, merged, compared.

A tree is :class:`modelcheck.suites.vstore.domain.tree.Tree` (plain values; rows are not read) so
the canonical hash of :mod:`modelcheck.suites.vstore.domain.hashing` applies. Everything that
*decides* something (three-way merges, version bumps, drift) is written here, from
docs/domain.md, independently of the model.
"""

from __future__ import annotations

import json
from typing import Any, Final, Literal

import psycopg
from psycopg.rows import tuple_row

from modelcheck.suites.vstore.domain.errors import DomainError
from modelcheck.suites.vstore.domain.hashing import tree_hash
from modelcheck.suites.vstore.domain.tree import Column, Index, Table, Tree

__all__ = ["tree_hash"]

_TABLES: Final = b"""
SELECT c.oid, c.relname::text
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %(schema)s AND c.relkind IN ('r', 'p')
"""

_COLUMNS: Final = b"""
SELECT a.attrelid, a.attname::text, pg_catalog.format_type(a.atttypid, a.atttypmod),
       NOT a.attnotnull, pg_catalog.pg_get_expr(d.adbin, 0)
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE n.nspname = %(schema)s AND c.relkind IN ('r', 'p') AND a.attnum > 0
  AND NOT a.attisdropped
ORDER BY a.attrelid, a.attnum
"""

_INDEXES: Final = b"""
SELECT i.relname::text, t.relname::text, x.indisunique,
       ARRAY(SELECT a.attname::text
             FROM unnest(x.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
             JOIN pg_catalog.pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum
             ORDER BY k.ord)
FROM pg_catalog.pg_index x
JOIN pg_catalog.pg_class i ON i.oid = x.indexrelid
JOIN pg_catalog.pg_class t ON t.oid = x.indrelid
JOIN pg_catalog.pg_namespace n ON n.oid = t.relnamespace
WHERE n.nspname = %(schema)s
"""


async def live_tree(conn: psycopg.AsyncConnection[Any], schema: str) -> Tree:
    """The structure of a working tree as the catalog shows it now (no rows)."""
    params = {"schema": schema}
    async with conn.cursor(row_factory=tuple_row) as cur:
        await cur.execute(_TABLES, params)
        names: dict[int, str] = dict(await cur.fetchall())
        await cur.execute(_COLUMNS, params)
        columns: dict[str, list[Column]] = {name: [] for name in names.values()}
        for oid, name, typ, nullable, default in await cur.fetchall():
            columns[names[oid]].append(Column(name, typ, nullable, default))
        await cur.execute(_INDEXES, params)
        indexes = {
            name: Index(name, table, tuple(cols), unique)
            for name, table, unique, cols in await cur.fetchall()
        }
    tables = {name: Table(name, tuple(cols)) for name, cols in columns.items()}
    return Tree(tables, indexes)


# -- JSON ------------------------------------------------------------------------------


def to_json(tree: Tree) -> str:
    return json.dumps(
        {
            "tables": {
                n: [[c.name, c.type, c.nullable, c.default] for c in t.columns]
                for n, t in tree.tables.items()
            },
            "indexes": {n: [i.table, list(i.columns), i.unique] for n, i in tree.indexes.items()},
        },
        ensure_ascii=False,
    )


def from_json(stored: str | dict[str, Any]) -> Tree:
    """A tree from :func:`to_json`'s text, or from a ``jsonb`` value psycopg already loaded."""
    data = json.loads(stored) if isinstance(stored, str) else stored
    tables = {
        n: Table(n, tuple(Column(c[0], c[1], c[2], c[3]) for c in cols))
        for n, cols in data["tables"].items()
    }
    indexes = {
        n: Index(n, table, tuple(cols), unique)
        for n, (table, cols, unique) in data["indexes"].items()
    }
    return Tree(tables, indexes)


# -- defaults --------------------------------------------------------------------------


def default_text(expression: str | None) -> str | None:
    """The literal text behind a ``pg_get_expr`` default (``5``, ``'-5'::integer``, ``true``).

    Every default was created as ``DEFAULT 'text'``, so the deparsed expression is a
    constant: a bare number or boolean, or a quoted literal with a cast. Re-creating the
    column with ``DEFAULT 'that text'`` prints the same expression again.
    """
    if expression is None:
        return None
    if not expression.startswith("'"):
        return expression
    out: list[str] = []
    i = 1
    while True:
        ch = expression[i]
        if ch == "'":
            if expression[i + 1 : i + 2] == "'":
                out.append("'")
                i += 2
                continue
            return "".join(out)
        out.append(ch)
        i += 1


# -- comparisons -----------------------------------------------------------------------

Bump = Literal["major", "minor", "patch"]


def classify(old: Tree, new: Tree) -> Bump:
    """docs/domain.md "Semantic versions": removal or type/index change, addition, else patch."""
    added = bool(set(new.tables) - set(old.tables) or set(new.indexes) - set(old.indexes))
    for name, table in old.tables.items():
        other = new.tables.get(name)
        if other is None:
            return "major"
        new_types = {c.name: c.type for c in other.columns}
        for column in table.columns:
            if new_types.get(column.name) != column.type:
                return "major"
        if set(new_types) - {c.name for c in table.columns}:
            added = True
    for name, index in old.indexes.items():
        if new.indexes.get(name) != index:
            return "major"
    return "minor" if added else "patch"


def bump(version: str, change: Bump) -> str:
    major, minor, patch = (int(p) for p in version.split("."))
    if change == "major":
        return f"{major + 1}.0.0"
    if change == "minor":
        return f"{major}.{minor + 1}.0"
    return f"{major}.{minor}.{patch + 1}"


def drifted_objects(live: Tree, recorded: Tree) -> tuple[str, ...]:
    """Names of tables and indexes whose definition differs, in "C" (byte) order."""
    names = {
        n
        for n in {*live.tables, *recorded.tables}
        if n not in live.tables
        or n not in recorded.tables
        or live.tables[n].columns != recorded.tables[n].columns
    }
    names |= {
        n
        for n in {*live.indexes, *recorded.indexes}
        if live.indexes.get(n) != recorded.indexes.get(n)
    }
    return tuple(sorted(names, key=str.encode))


# -- three-way merge -------------------------------------------------------------------

_GONE: Final = ("<absent>",)


def _conflict(what: str) -> DomainError:
    return DomainError("merge_conflict", message=f"both sides changed {what}")


def _choose(base: Any, ours: Any, theirs: Any, what: str) -> Any:
    if ours == theirs:
        return ours
    if ours == base:
        return theirs
    if theirs == base:
        return ours
    raise _conflict(what)


def _definition(table: Table | None, name: str) -> Any:
    column = None if table is None else table.column(name)
    return _GONE if column is None else column


def merge_trees(base: Tree, ours: Tree, theirs: Tree) -> Tree:
    """Per table, per column and per index: a side equal to the base takes the other."""
    tables: dict[str, Table] = {}
    for name in sorted({*base.tables, *ours.tables, *theirs.tables}, key=str.encode):
        b, o, t = base.tables.get(name), ours.tables.get(name), theirs.tables.get(name)
        kb, ko, kt = (_GONE if x is None else x.columns for x in (b, o, t))
        if ko in (kt, kb) or kt == kb:
            picked = _choose(kb, ko, kt, f"table {name!r}")
            if picked is not _GONE:
                tables[name] = Table(name, picked)
            continue
        if o is None or t is None:
            raise _conflict(f"table {name!r} (removed on one side, changed on the other)")
        order = [c.name for c in o.columns]
        order += [c.name for c in t.columns if o.column(c.name) is None]
        merged = []
        for column in order:
            picked = _choose(
                _definition(b, column),
                _definition(o, column),
                _definition(t, column),
                f"column {column!r} of table {name!r}",
            )
            if picked is not _GONE:
                merged.append(picked)
        tables[name] = Table(name, tuple(merged))
    indexes: dict[str, Index] = {}
    for name in sorted({*base.indexes, *ours.indexes, *theirs.indexes}, key=str.encode):
        picked = _choose(
            base.indexes.get(name, _GONE),
            ours.indexes.get(name, _GONE),
            theirs.indexes.get(name, _GONE),
            f"index {name!r}",
        )
        if picked is _GONE:
            continue
        table = tables.get(picked.table)
        if table is None or any(table.column(c) is None for c in picked.columns):
            raise _conflict(f"index {name!r} (its table or column is gone)")
        if name in tables:
            raise _conflict(f"name {name!r} (a table and an index)")
        indexes[name] = picked
    return Tree(tables, indexes)
