"""What each migration operation does to a working tree, as Postgres would do it.

Pure functions from a :class:`Tree` to a new :class:`Tree`, raising the
:class:`DomainError` (kind ``ddl``, Postgres's SQLSTATE) that the real DDL raises, in
the order Postgres checks. The model runs migrations, rollbacks and merges with them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from modelcheck.suites.vstore.domain import types
from modelcheck.suites.vstore.domain.errors import DomainError, ddl_error
from modelcheck.suites.vstore.domain.tree import Column, Index, Row, Table, Tree

Operation = Mapping[str, Any]

UNDEFINED_TABLE = "42P01"
DUPLICATE_RELATION = "42P07"
UNDEFINED_COLUMN = "42703"
DUPLICATE_COLUMN = "42701"
UNDEFINED_OBJECT = "42704"
WRONG_OBJECT_TYPE = "42809"
NOT_NULL_VIOLATION = "23502"
UNIQUE_VIOLATION = "23505"
SYNTAX_ERROR = "42601"
CANNOT_CAST = "42846"


def column_from_spec(spec: Mapping[str, Any]) -> Column:
    """A column spec of a migration, as the catalog will show it.

    The default's input text is kept (``default_value``); Postgres evaluates it only
    when it fills rows, so :func:`default_of` raises its errors at that point.
    """
    typ = types.parse_type(spec["type"])
    default_text = spec["default"]
    if default_text is None:
        return Column(spec["name"], str(typ), spec["nullable"])
    rendered = types.render_default(default_text, typ)
    return Column(spec["name"], str(typ), spec["nullable"], rendered, default_text)


def default_of(column: Column) -> str | None:
    """The value a column's default puts into a row, as ``::text`` prints it."""
    return types.input_value(column.default_value, types.parse_type(column.type))


def _table(tree: Tree, name: str) -> Table:
    table = tree.tables.get(name)
    if table is None:
        if name in tree.indexes:
            raise ddl_error(WRONG_OBJECT_TYPE, f"{name!r} is not a table")
        raise ddl_error(UNDEFINED_TABLE, f"relation {name!r} does not exist")
    return table


def _with_table(tree: Tree, table: Table) -> Tree:
    tables = dict(tree.tables)
    tables[table.name] = table
    return Tree(tables, dict(tree.indexes))


def _relation_exists(tree: Tree, name: str) -> bool:
    return name in tree.tables or name in tree.indexes


def check_unique(table: Table, index: Index) -> None:
    """Raise 23505 when the rows hold two equal, fully non-null keys of a unique index."""
    if not index.unique:
        return
    positions = [next(i for i, c in enumerate(table.columns) if c.name == n) for n in index.columns]
    seen: set[tuple[str, ...]] = set()
    for row in table.rows:
        key = tuple(row[p] for p in positions)
        if any(v is None for v in key):
            continue
        strict = tuple(v for v in key if v is not None)
        if strict in seen:
            raise ddl_error(UNIQUE_VIOLATION, f"duplicate key in {index.name!r}")
        seen.add(strict)


def create_table(tree: Tree, op: Operation) -> Tree:
    specs = op["columns"]
    names = [c["name"] for c in specs]
    if len(set(names)) != len(names):
        raise ddl_error(DUPLICATE_COLUMN, "column specified more than once")
    if _relation_exists(tree, op["table"]):
        raise ddl_error(DUPLICATE_RELATION, f"relation {op['table']!r} already exists")
    columns = tuple(column_from_spec(c) for c in specs)
    return _with_table(tree, Table(op["table"], columns))


def drop_table(tree: Tree, op: Operation) -> Tree:
    name = op["table"]
    _table(tree, name)
    tables = {n: t for n, t in tree.tables.items() if n != name}
    indexes = {n: i for n, i in tree.indexes.items() if i.table != name}
    return Tree(tables, indexes)


def add_column(tree: Tree, op: Operation) -> Tree:
    table = _table(tree, op["table"])
    spec = op["column"]
    if table.column(spec["name"]) is not None:
        raise ddl_error(DUPLICATE_COLUMN, f"column {spec['name']!r} already exists")
    column = column_from_spec(spec)
    # ADD COLUMN evaluates a default once, even on an empty table (the "missing value").
    value = default_of(column)
    if value is None and not column.nullable and table.rows:
        raise ddl_error(NOT_NULL_VIOLATION, f"column {column.name!r} contains null values")
    rows = tuple((*row, value) for row in table.rows)
    return _with_table(tree, Table(table.name, (*table.columns, column), rows))


def _column_position(table: Table, name: str) -> int:
    for position, column in enumerate(table.columns):
        if column.name == name:
            return position
    raise ddl_error(UNDEFINED_COLUMN, f"column {name!r} does not exist")


def drop_column(tree: Tree, op: Operation) -> Tree:
    table = _table(tree, op["table"])
    position = _column_position(table, op["column"])
    columns = table.columns[:position] + table.columns[position + 1 :]
    rows = tuple(row[:position] + row[position + 1 :] for row in table.rows)
    indexes = {
        n: i
        for n, i in tree.indexes.items()
        if not (i.table == table.name and op["column"] in i.columns)
    }
    return Tree({**tree.tables, table.name: Table(table.name, columns, rows)}, indexes)


def rename_column(tree: Tree, op: Operation) -> Tree:
    table = _table(tree, op["table"])
    old, new = op["column"], op["new_name"]
    position = _column_position(table, old)
    if table.column(new) is not None:
        raise ddl_error(DUPLICATE_COLUMN, f"column {new!r} already exists")
    columns = list(table.columns)
    c = columns[position]
    columns[position] = Column(new, c.type, c.nullable, c.default, c.default_value)
    indexes = {
        n: (
            Index(n, i.table, tuple(new if x == old else x for x in i.columns), i.unique)
            if i.table == table.name
            else i
        )
        for n, i in tree.indexes.items()
    }
    renamed = Table(table.name, tuple(columns), table.rows)
    return Tree({**tree.tables, table.name: renamed}, indexes)


def alter_column_type(tree: Tree, op: Operation) -> Tree:
    table = _table(tree, op["table"])
    position = _column_position(table, op["column"])
    column = table.columns[position]
    if column.default is not None:
        raise DomainError("column_has_default", message=f"column {column.name!r} has a default")
    source, target = types.parse_type(column.type), types.parse_type(op["type"])
    if not types.cast_exists(source, target):
        raise ddl_error(CANNOT_CAST, f"cannot cast type {source} to {target}")
    rows = tuple(
        (*row[:position], types.cast_value(row[position], source, target), *row[position + 1 :])
        for row in table.rows
    )
    columns = list(table.columns)
    columns[position] = Column(column.name, str(target), column.nullable)
    changed = Table(table.name, tuple(columns), rows)
    for index in tree.indexes_on(table.name):
        if column.name in index.columns:
            check_unique(changed, index)
    return _with_table(tree, changed)


def create_index(tree: Tree, op: Operation) -> Tree:
    table = _table(tree, op["table"])
    for name in op["columns"]:
        _column_position(table, name)
    if _relation_exists(tree, op["index"]):
        raise ddl_error(DUPLICATE_RELATION, f"relation {op['index']!r} already exists")
    index = Index(op["index"], table.name, tuple(op["columns"]), bool(op["unique"]))
    check_unique(table, index)
    return Tree(dict(tree.tables), {**tree.indexes, index.name: index})


def drop_index(tree: Tree, op: Operation) -> Tree:
    name = op["index"]
    if name in tree.tables:
        raise ddl_error(WRONG_OBJECT_TYPE, f"{name!r} is not an index")
    if name not in tree.indexes:
        raise ddl_error(UNDEFINED_OBJECT, f"index {name!r} does not exist")
    return Tree(dict(tree.tables), {n: i for n, i in tree.indexes.items() if n != name})


def insert_row(tree: Tree, table: Table, values: Sequence[str | None]) -> Table:
    """One ``INSERT ... VALUES`` of a row: input conversion, NOT NULL, then unique indexes."""
    if not table.columns or len(values) != len(table.columns):
        raise ddl_error(SYNTAX_ERROR, "INSERT has the wrong number of expressions")
    row: Row = types.input_row(values, [types.parse_type(c.type) for c in table.columns])
    for value, column in zip(row, table.columns, strict=True):
        if value is None and not column.nullable:
            raise ddl_error(NOT_NULL_VIOLATION, f"null value in column {column.name!r}")
    grown = Table(table.name, table.columns, (*table.rows, row))
    for index in tree.indexes_on(table.name):
        check_unique(grown, index)
    return grown


def insert_rows(tree: Tree, op: Operation) -> Tree:
    table = _table(tree, op["table"])
    for values in op["rows"]:
        table = insert_row(tree, table, values)
    return _with_table(tree, table)


APPLY: Mapping[str, Callable[[Tree, Operation], Tree]] = {
    "create_table": create_table,
    "drop_table": drop_table,
    "add_column": add_column,
    "drop_column": drop_column,
    "rename_column": rename_column,
    "alter_column_type": alter_column_type,
    "create_index": create_index,
    "drop_index": drop_index,
    "insert_rows": insert_rows,
}


def column_spec(column: Column) -> dict[str, Any]:
    """The migration spec that recreates a column (its default as the value text)."""
    return {
        "name": column.name,
        "type": column.type,
        "nullable": column.nullable,
        "default": column.default_value,
    }


def _index_op(index: Index) -> dict[str, Any]:
    return {
        "op": "create_index",
        "index": index.name,
        "table": index.table,
        "columns": list(index.columns),
        "unique": index.unique,
    }


def inverse(tree: Tree, op: Operation) -> list[dict[str, Any]]:
    """The operations that undo ``op`` applied to ``tree`` (docs/domain.md, the inverse table)."""
    kind = op["op"]
    if kind == "create_table":
        return [{"op": "drop_table", "table": op["table"]}]
    if kind == "drop_table":
        table = tree.tables[op["table"]]
        create = {
            "op": "create_table",
            "table": table.name,
            "columns": [column_spec(c) for c in table.columns],
        }
        return [create, *(_index_op(i) for i in tree.indexes_on(table.name))]
    if kind == "add_column":
        return [{"op": "drop_column", "table": op["table"], "column": op["column"]["name"]}]
    if kind == "drop_column":
        table = tree.tables[op["table"]]
        column = table.column(op["column"])
        assert column is not None
        lost = [i for i in tree.indexes_on(table.name) if column.name in i.columns]
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
        column = tree.tables[op["table"]].column(op["column"])
        assert column is not None
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
        return [_index_op(tree.indexes[op["index"]])]
    return []


def run(tree: Tree, operations: Sequence[Operation]) -> tuple[Tree, list[dict[str, Any]]]:
    """Apply operations in order; return the new tree and the recorded inverse."""
    undo: list[list[dict[str, Any]]] = []
    for op in operations:
        changed = APPLY[op["op"]](tree, op)
        undo.append(inverse(tree, op))
        tree = changed
    return tree, [step for ops in reversed(undo) for step in ops]
