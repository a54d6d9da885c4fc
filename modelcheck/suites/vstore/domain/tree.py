"""Working trees as values: tables (columns in order, rows) and indexes.

The model computes these; the snapshot reader builds the same classes from the live
catalog. Column types are ``format_type()`` spellings and defaults are
``pg_get_expr()`` renderings, so equality means "Postgres would print the same".
"""

from __future__ import annotations

from collections.abc import Mapping

from attrs import field, frozen

Row = tuple[str | None, ...]


@frozen
class Column:
    name: str
    type: str
    nullable: bool
    #: The default as ``pg_get_expr`` prints it (e.g. ``5``, ``'x'::text``), or None.
    default: str | None = None
    #: The default's input text as the migration gave it. The model needs it to fill new
    #: rows; the catalog only has the expression, so it takes no part in equality.
    default_value: str | None = field(default=None, eq=False, repr=False)


@frozen
class Index:
    name: str
    table: str
    columns: tuple[str, ...]
    unique: bool


def sorted_rows(rows: tuple[Row, ...]) -> tuple[Row, ...]:
    """Rows are a multiset: heap order is not observable, so snapshots hold them sorted."""
    return tuple(sorted(rows, key=lambda row: tuple((v is None, v or "") for v in row)))


@frozen
class Table:
    name: str
    columns: tuple[Column, ...]
    #: In heap (insertion) order in the model; sorted in snapshots.
    rows: tuple[Row, ...] = ()

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)

    @property
    def structure(self) -> tuple[str, tuple[Column, ...]]:
        """The table without its data: what commits, hashes and merges look at."""
        return (self.name, self.columns)


@frozen
class Tree:
    """One branch's working tree (a Postgres schema)."""

    tables: Mapping[str, Table] = field(factory=dict)
    indexes: Mapping[str, Index] = field(factory=dict)

    def indexes_on(self, table: str) -> list[Index]:
        return sorted(
            (i for i in self.indexes.values() if i.table == table),
            key=lambda i: i.name.encode(),
        )

    def without_rows(self) -> Tree:
        return Tree({n: Table(n, t.columns) for n, t in self.tables.items()}, dict(self.indexes))
