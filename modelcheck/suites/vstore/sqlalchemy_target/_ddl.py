"""Real DDL in a branch's working tree, composed with :mod:`psycopg.sql` only.

Identifiers go through ``sql.Identifier`` and values through ``sql.Literal``; type
spellings were checked by ``parse_type`` (or come from ``format_type``), so they are
spliced as ``sql.SQL``. Postgres raises the errors; callers map them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

import psycopg
from psycopg import sql

from modelcheck.suites.vstore.domain.errors import DomainError
from modelcheck.suites.vstore.domain.tree import Column, Index, Tree
from modelcheck.suites.vstore.sqlalchemy_target._trees import default_text, live_tree

Operation = Mapping[str, Any]
_REBUILD: Final = "_vstore_merge_rebuild"


async def _run(conn: psycopg.AsyncConnection[Any], statement: sql.Composed | sql.SQL) -> None:
    await conn.execute(statement)


async def _refuse_index(conn: psycopg.AsyncConnection[Any], schema: str, name: str) -> None:
    """42809 when ``name`` is an index: Postgres would rename the index's own column
    name, which no tree shows; rename_column takes tables only (docs/domain.md)."""
    cursor = await conn.execute(
        "SELECT EXISTS (SELECT FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = %s AND c.relname = %s AND c.relkind IN ('i', 'I'))",
        (schema, name),
    )
    row = await cursor.fetchone()
    if row is not None and row[0]:
        await conn.execute(
            "SELECT sa_store.raise_domain_error(%s, %s, %s)",
            ("ddl", "42809", f"{name!r} is not a table"),
        )


def _type(spelling: str) -> sql.SQL:
    # Checked by parse_type (or printed by format_type): safe to splice, see module doc.
    return sql.SQL(spelling)


def _column_ddl(spec: Mapping[str, Any]) -> sql.Composable:
    parts: list[sql.Composable] = [sql.Identifier(spec["name"]), _type(spec["type"])]
    if not spec["nullable"]:
        parts.append(sql.SQL("NOT NULL"))
    if spec["default"] is not None:
        parts.append(sql.SQL("DEFAULT {}").format(sql.Literal(spec["default"])))
    return sql.SQL(" ").join(parts)


def column_spec(column: Column) -> dict[str, Any]:
    """The migration column spec that re-creates a catalog column."""
    return {
        "name": column.name,
        "type": column.type,
        "nullable": column.nullable,
        "default": default_text(column.default),
    }


def _index_op(index: Index) -> dict[str, Any]:
    return {
        "op": "create_index",
        "index": index.name,
        "table": index.table,
        "columns": list(index.columns),
        "unique": index.unique,
    }


def _indexes_on(tree: Tree, table: str) -> list[Index]:
    return sorted(
        (i for i in tree.indexes.values() if i.table == table), key=lambda i: i.name.encode()
    )


def inverse_of(tree: Tree, op: Operation) -> list[dict[str, Any]] | None:
    """docs/domain.md's inverse table, from the tree just before ``op``.

    ``None`` when the object ``op`` needs is missing: the DDL is about to fail anyway.
    """
    kind = op["op"]
    if kind == "create_table":
        return [{"op": "drop_table", "table": op["table"]}]
    if kind == "drop_table":
        table = tree.tables.get(op["table"])
        if table is None:
            return None
        create = {
            "op": "create_table",
            "table": table.name,
            "columns": [column_spec(c) for c in table.columns],
        }
        return [create, *(_index_op(i) for i in _indexes_on(tree, table.name))]
    if kind == "add_column":
        return [{"op": "drop_column", "table": op["table"], "column": op["column"]["name"]}]
    if kind == "drop_column":
        table = tree.tables.get(op["table"])
        column = None if table is None else table.column(op["column"])
        if table is None or column is None:
            return None
        lost = [i for i in _indexes_on(tree, table.name) if column.name in i.columns]
        add = {"op": "add_column", "table": table.name, "column": column_spec(column)}
        return [add, *(_index_op(i) for i in lost)]
    if kind == "rename_column":
        return [
            {
                "op": "rename_column",
                "table": op["table"],
                "column": op["new_name"],
                "new_name": op["column"],
            }
        ]
    if kind == "alter_column_type":
        table = tree.tables.get(op["table"])
        column = None if table is None else table.column(op["column"])
        if column is None:
            return None
        return [
            {
                "op": "alter_column_type",
                "table": op["table"],
                "column": op["column"],
                "type": column.type,
            }
        ]
    if kind == "create_index":
        return [{"op": "drop_index", "index": op["index"]}]
    if kind == "drop_index":
        index = tree.indexes.get(op["index"])
        return None if index is None else [_index_op(index)]
    return []


async def run_operation(conn: psycopg.AsyncConnection[Any], schema: str, op: Operation) -> None:
    """One migration operation as the DDL of docs/domain.md's table."""
    s = sql.Identifier(schema)

    def rel(name: str) -> sql.Composable:
        return sql.SQL("{}.{}").format(s, sql.Identifier(name))

    kind = op["op"]
    if kind == "create_table":
        columns = sql.SQL(", ").join(_column_ddl(c) for c in op["columns"])
        await _run(conn, sql.SQL("CREATE TABLE {} ({})").format(rel(op["table"]), columns))
    elif kind == "drop_table":
        await _run(conn, sql.SQL("DROP TABLE {}").format(rel(op["table"])))
    elif kind == "add_column":
        await _run(
            conn,
            sql.SQL("ALTER TABLE {} ADD COLUMN {}").format(
                rel(op["table"]), _column_ddl(op["column"])
            ),
        )
    elif kind == "drop_column":
        await _run(
            conn,
            sql.SQL("ALTER TABLE {} DROP COLUMN {}").format(
                rel(op["table"]), sql.Identifier(op["column"])
            ),
        )
    elif kind == "rename_column":
        await _refuse_index(conn, schema, op["table"])
        await _run(
            conn,
            sql.SQL("ALTER TABLE {} RENAME COLUMN {} TO {}").format(
                rel(op["table"]), sql.Identifier(op["column"]), sql.Identifier(op["new_name"])
            ),
        )
    elif kind == "alter_column_type":
        await _run(
            conn,
            sql.SQL("ALTER TABLE {} ALTER COLUMN {} TYPE {} USING {}::{}").format(
                rel(op["table"]),
                sql.Identifier(op["column"]),
                _type(op["type"]),
                sql.Identifier(op["column"]),
                _type(op["type"]),
            ),
        )
    elif kind == "create_index":
        await create_index(
            conn, schema, Index(op["index"], op["table"], tuple(op["columns"]), op["unique"])
        )
    elif kind == "drop_index":
        await _run(conn, sql.SQL("DROP INDEX {}").format(rel(op["index"])))
    elif kind == "insert_rows":
        await _insert_rows(conn, schema, op["table"], op["rows"])
    else:  # pragma: no cover - validation rejected it
        raise AssertionError(kind)


async def create_index(conn: psycopg.AsyncConnection[Any], schema: str, index: Index) -> None:
    await _run(
        conn,
        sql.SQL("CREATE {}INDEX {} ON {}.{} ({})").format(
            sql.SQL("UNIQUE " if index.unique else ""),
            sql.Identifier(index.name),
            sql.Identifier(schema),
            sql.Identifier(index.table),
            sql.SQL(", ").join(sql.Identifier(c) for c in index.columns),
        ),
    )


async def _insert_rows(
    conn: psycopg.AsyncConnection[Any],
    schema: str,
    table: str,
    rows: Sequence[Sequence[str | None]],
) -> None:
    # "All columns" in catalog order; a missing table still gets Postgres' own error.
    tree = await live_tree(conn, schema)
    found = tree.tables.get(table)
    names = [c.name for c in found.columns] if found is not None else []
    target = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(table))
    column_list = sql.SQL(", ").join(sql.Identifier(n) for n in names)
    for row in rows:
        values = sql.SQL(", ").join(sql.Literal(v) for v in row)
        if found is None:
            await _run(conn, sql.SQL("INSERT INTO {} VALUES ({})").format(target, values))
        else:
            await _run(
                conn,
                sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(target, column_list, values),
            )


async def run_operations(
    conn: psycopg.AsyncConnection[Any],
    schema: str,
    ops: Sequence[Operation],
    *,
    record_inverse: bool,
) -> list[dict[str, Any]]:
    """Run operations in order; return the recorded inverse (reversed per-op inverses)."""
    undo: list[list[dict[str, Any]]] = []
    for op in ops:
        kind = op["op"]
        needs_tree = kind == "alter_column_type" or (
            record_inverse and kind in ("drop_table", "drop_column", "drop_index")
        )
        tree = await live_tree(conn, schema) if needs_tree else Tree()
        if kind == "alter_column_type":
            table = tree.tables.get(op["table"])
            column = None if table is None else table.column(op["column"])
            if column is not None and column.default is not None:
                raise DomainError(
                    "column_has_default",
                    message=f"column {op['column']!r} has a default; the store does not cast it",
                )
        if record_inverse:
            undo.append(inverse_of(tree, op) or [])
        await run_operation(conn, schema, op)
    return [step for ops_ in reversed(undo) for step in ops_]


# -- copies and merges -----------------------------------------------------------------


async def copy_tree(conn: psycopg.AsyncConnection[Any], source: str, target: str) -> None:
    """Create schema ``target`` as a copy of ``source``: tables, defaults, rows, indexes."""
    tree = await live_tree(conn, source)
    await _run(conn, sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(target)))
    for name in sorted(tree.tables, key=str.encode):
        new = sql.SQL("{}.{}").format(sql.Identifier(target), sql.Identifier(name))
        old = sql.SQL("{}.{}").format(sql.Identifier(source), sql.Identifier(name))
        await _run(conn, sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING DEFAULTS)").format(new, old))
        await _run(conn, sql.SQL("INSERT INTO {} SELECT * FROM {}").format(new, old))
    for name in sorted(tree.indexes, key=str.encode):
        await create_index(conn, target, tree.indexes[name])


async def move_tree(conn: psycopg.AsyncConnection[Any], schema: str, merged: Tree) -> None:
    """Change a working tree to ``merged`` with the DDL order of docs/domain.md "merge"."""
    current = await live_tree(conn, schema)
    s = sql.Identifier(schema)
    for name in sorted(current.indexes, key=str.encode):
        if merged.indexes.get(name) != current.indexes[name]:
            await _run(conn, sql.SQL("DROP INDEX {}.{}").format(s, sql.Identifier(name)))
    for name in sorted(current.tables, key=str.encode):
        if name not in merged.tables:
            await _run(conn, sql.SQL("DROP TABLE {}.{}").format(s, sql.Identifier(name)))
    for name in sorted(merged.tables, key=str.encode):
        table = merged.tables[name]
        old = current.tables.get(name)
        if old is not None and old.columns == table.columns:
            continue
        columns = sql.SQL(", ").join(_column_ddl(column_spec(c)) for c in table.columns)
        temp = sql.SQL("{}.{}").format(s, sql.Identifier(_REBUILD))
        await _run(conn, sql.SQL("CREATE TABLE {} ({})").format(temp, columns))
        if old is not None:
            kept = [c for c in table.columns if old.column(c.name) is not None]
            if kept:
                await _run(
                    conn,
                    sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {}.{}").format(
                        temp,
                        sql.SQL(", ").join(sql.Identifier(c.name) for c in kept),
                        sql.SQL(", ").join(
                            sql.SQL("{}::{}").format(sql.Identifier(c.name), _type(c.type))
                            for c in kept
                        ),
                        s,
                        sql.Identifier(name),
                    ),
                )
            else:
                await _run(
                    conn,
                    sql.SQL("INSERT INTO {} SELECT FROM {}.{}").format(
                        temp, s, sql.Identifier(name)
                    ),
                )
            await _run(conn, sql.SQL("DROP TABLE {}.{}").format(s, sql.Identifier(name)))
        await _run(
            conn,
            sql.SQL("ALTER TABLE {} RENAME TO {}").format(temp, sql.Identifier(name)),
        )
    after = await live_tree(conn, schema)
    for name in sorted(merged.indexes, key=str.encode):
        if name not in after.indexes:
            await create_index(conn, schema, merged.indexes[name])
