"""One frozen snapshot type for the whole observable state, from the model and from Postgres.

Equality of two :class:`Snapshot` values is the oracle. The database side is read in
one round trip by ``modelcheck_observe.snapshot()`` (``observer.sql``), which reads the
store's plain tables and the live catalog, never the store's own idea of itself.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from importlib import resources
from typing import Any
from uuid import UUID

import psycopg
from attrs import frozen

from modelcheck.suites.vstore.domain.model import Model
from modelcheck.suites.vstore.domain.tree import Column, Index, Table, Tree, sorted_rows

OBSERVER_SCHEMA = "modelcheck_observe"


@frozen
class BranchRow:
    pk: int | None
    id: UUID | None
    parent: str | None
    head: str
    status: str
    version: str
    schema_name: str | None
    tree_hash: str


@frozen
class CommitRow:
    pk: int | None
    id: UUID | None
    branch: str
    parents: tuple[str, ...]
    message: str
    schema_hash: str
    version: str


@frozen
class MigrationRow:
    pk: int | None
    id: UUID | None
    branch: str
    checksum: str
    status: str


@frozen
class Snapshot:
    """Everything observable: store rows by identifier, and every working tree by schema."""

    branches: Mapping[str, BranchRow]
    commits: Mapping[str, CommitRow]
    migrations: Mapping[str, MigrationRow]
    trees: Mapping[str, Tree]


def _schema_name(pk: int | None) -> str | None:
    return None if pk is None else f"wt_{pk}"


def _observed_tree(tree: Tree) -> Tree:
    return Tree(
        {n: Table(n, t.columns, sorted_rows(t.rows)) for n, t in tree.tables.items()},
        dict(tree.indexes),
    )


def from_model(model: Model, *, trees: bool = True) -> Snapshot:
    """What the database must hold when the model is right."""
    from modelcheck.suites.vstore.domain.hashing import tree_hash

    branches = {}
    working: dict[str, Tree] = {"public": Tree()}
    for name, b in model.branches.items():
        pk = model.pk_of("branch", name)
        schema = _schema_name(pk)
        branches[name] = BranchRow(
            pk,
            model.id_of("branch", name),
            b.parent,
            b.head,
            b.status,
            b.version,
            schema,
            tree_hash(b.recorded),
        )
        if trees and b.status == "active" and schema is not None:
            working[schema] = _observed_tree(b.tree)
    commits = {
        i: CommitRow(
            model.pk_of("commit", i),
            model.id_of("commit", i),
            c.branch,
            c.parents,
            c.message,
            c.schema_hash,
            c.version,
        )
        for i, c in model.commits.items()
    }
    migrations = {
        i: MigrationRow(
            model.pk_of("migration", i), model.id_of("migration", i), m.branch, m.checksum, m.status
        )
        for i, m in model.migrations.items()
    }
    return Snapshot(branches, commits, migrations, working if trees else {})


def observer_sql() -> str:
    """The observer function, installed by the framework next to any target."""
    return resources.files("modelcheck.suites.vstore").joinpath("observer.sql").read_text()


def install_observer(conn: psycopg.Connection[Any]) -> None:
    conn.execute(observer_sql().encode())


def _tree(data: Mapping[str, Any]) -> Tree:
    tables = {
        name: Table(
            name,
            tuple(Column(c[0], c[1], c[2], c[3]) for c in t["columns"]),
            sorted_rows(tuple(tuple(r) for r in t["rows"])),
        )
        for name, t in data["tables"].items()
    }
    indexes = {
        name: Index(name, i["table"], tuple(i["columns"]), i["unique"])
        for name, i in data["indexes"].items()
    }
    return Tree(tables, indexes)


def _keyed(items: list[tuple[str, Any]]) -> dict[str, Any]:
    """Key rows by identifier; a duplicate (a broken uniqueness) stays visible as ``name#2``."""
    keyed: dict[str, Any] = {}
    for key, value in items:
        unique, n = key, 1
        while unique in keyed:
            n += 1
            unique = f"{key}#{n}"
        keyed[unique] = value
    return keyed


def from_document(doc: Mapping[str, Any]) -> Snapshot:
    """Build a snapshot from the observer's JSON document."""
    branches = _keyed(
        [
            (
                b["identifier"],
                BranchRow(
                    b["pk"],
                    UUID(b["id"]),
                    b["parent"],
                    b["head"],
                    b["status"],
                    b["version"],
                    b["schema_name"],
                    b["tree_hash"],
                ),
            )
            for b in doc["branches"]
        ]
    )
    commits = _keyed(
        [
            (
                c["identifier"],
                CommitRow(
                    c["pk"],
                    UUID(c["id"]),
                    c["branch"],
                    tuple(c["parents"]),
                    c["message"],
                    c["schema_hash"],
                    c["version"],
                ),
            )
            for c in doc["commits"]
        ]
    )
    migrations = _keyed(
        [
            (
                m["identifier"],
                MigrationRow(m["pk"], UUID(m["id"]), m["branch"], m["checksum"], m["status"]),
            )
            for m in doc["migrations"]
        ]
    )
    trees = {schema: _tree(t) for schema, t in doc["trees"].items()}
    return Snapshot(branches, commits, migrations, trees)


_QUERY = b"SELECT modelcheck_observe.snapshot(%s, %s)::text"


async def read_snapshot(
    conn: psycopg.AsyncConnection[Any], store_schemas: tuple[str, ...], *, trees: bool = True
) -> Snapshot:
    """Read the committed database state in one round trip.

    ``trees=False`` reads only the store's own tables: it never waits for another
    session's locks (even catalog look-ups of a table under open DDL would), so it is
    safe while transactions are open.
    """
    cursor = await conn.execute(_QUERY, (list(store_schemas), trees), prepare=True)
    row = await cursor.fetchone()
    assert row is not None
    return from_document(json.loads(row[0]))


def read_snapshot_sync(conn: psycopg.Connection[Any], store_schemas: tuple[str, ...]) -> Snapshot:
    row = conn.execute(_QUERY, (list(store_schemas), True)).fetchone()
    assert row is not None
    return from_document(json.loads(row[0]))
