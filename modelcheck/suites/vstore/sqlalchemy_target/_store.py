"""The store's own layout as SQLAlchemy Core metadata, and how statements reach psycopg.

The layout is the target's own, not docs/domain.md's ``vstore`` tables (the target
brings its own observer, :mod:`._observe`): schema ``sa_store``, tables ``branch``,
``revision`` and ``schema_change``, a revision's parents as one ``bigint[]`` column
(first parent first), statuses as Postgres ENUM types, trees and operation lists as
``jsonb``. Branch working trees stay real schemas named ``wt_<branch_no>``.

The framework owns the connections (a :class:`psycopg.AsyncConnection` per call), so
statements are compiled with the psycopg dialect and executed on that connection:
no engine, no pool.
"""

from __future__ import annotations

from typing import Any, Final, NamedTuple

import psycopg
from psycopg.rows import tuple_row
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    ForeignKey,
    Identity,
    MetaData,
    Table,
    Text,
    Uuid,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, ENUM, JSONB
from sqlalchemy.dialects.postgresql.named_types import CreateEnumType
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg
from sqlalchemy.schema import CreateIndex, CreateTable
from sqlalchemy.sql import ClauseElement

DIALECT: Final = PGDialect_psycopg()  # type: ignore[no-untyped-call]  # untyped in SQLAlchemy
SCHEMA: Final = "sa_store"

metadata = MetaData(schema=SCHEMA)

#: ``active`` | ``deleted``, a Postgres ENUM (created by :func:`ddl_statements`).
branch_state = ENUM(
    "active", "deleted", name="branch_state", schema=SCHEMA, metadata=metadata, create_type=False
)
#: ``applied`` | ``rolled_back``.
change_state = ENUM(
    "applied",
    "rolled_back",
    name="change_state",
    schema=SCHEMA,
    metadata=metadata,
    create_type=False,
)

branch_table = Table(
    "branch",
    metadata,
    Column("branch_no", BigInteger, Identity(always=True), primary_key=True),
    Column(
        "public_id", Uuid, nullable=False, unique=True, server_default=text("gen_random_uuid()")
    ),
    Column("name", Text, nullable=False, unique=True),
    Column("forked_from", BigInteger, ForeignKey(f"{SCHEMA}.branch.branch_no"), nullable=True),
    # No foreign key: the root revision and main reference each other at install.
    Column("head_revision", BigInteger, nullable=False),
    Column("state", branch_state, nullable=False),
    Column("semver", Text, nullable=False),
    Column("workspace", Text, nullable=False),
    Column("recorded_hash", Text, nullable=False),
    # The recorded tree (verify names the objects that drifted).
    Column("recorded_tree", JSONB, nullable=False),
)

revision_table = Table(
    "revision",
    metadata,
    Column("revision_no", BigInteger, Identity(always=True), primary_key=True),
    Column(
        "public_id", Uuid, nullable=False, unique=True, server_default=text("gen_random_uuid()")
    ),
    Column("ident", Text, nullable=False, unique=True),
    Column("branch_no", BigInteger, ForeignKey(f"{SCHEMA}.branch.branch_no"), nullable=False),
    # Parent revision_no values in order: none (the root), one, or two (a merge: [T, S]).
    Column(
        "parents",
        ARRAY(BigInteger),
        CheckConstraint("cardinality(parents) <= 2 AND array_position(parents, NULL) IS NULL"),
        nullable=False,
    ),
    Column("note", Text, nullable=False),
    Column("tree_digest", Text, nullable=False),
    Column("semver", Text, nullable=False),
    # The revision's tree (version bumps and three-way merges).
    Column("tree", JSONB, nullable=False),
)

change_table = Table(
    "schema_change",
    metadata,
    Column("change_no", BigInteger, Identity(always=True), primary_key=True),
    Column(
        "public_id", Uuid, nullable=False, unique=True, server_default=text("gen_random_uuid()")
    ),
    Column("ident", Text, nullable=False, unique=True),
    Column("branch_no", BigInteger, ForeignKey(f"{SCHEMA}.branch.branch_no"), nullable=False),
    Column("checksum", Text, nullable=False),
    Column("state", change_state, nullable=False),
    # The operations and the inverse recorded at apply time.
    Column("ops", JSONB, nullable=False),
    Column("undo", JSONB, nullable=False),
)


class Keys(NamedTuple):
    """The Trinity keys of an entity kind: its table and the pk, id and identifier columns."""

    table: Table
    pk: Any
    id: Any
    identifier: Any


KEYS: Final = {
    "branch": Keys(
        branch_table, branch_table.c.branch_no, branch_table.c.public_id, branch_table.c.name
    ),
    "commit": Keys(
        revision_table,
        revision_table.c.revision_no,
        revision_table.c.public_id,
        revision_table.c.ident,
    ),
    "migration": Keys(
        change_table, change_table.c.change_no, change_table.c.public_id, change_table.c.ident
    ),
}


def ddl_statements() -> list[str]:
    """``CREATE TYPE``/``CREATE TABLE``/``CREATE INDEX`` for the store, compiled for Postgres."""
    statements = [
        str(CreateEnumType(enum).compile(dialect=DIALECT)) for enum in (branch_state, change_state)
    ]
    for table in metadata.sorted_tables:
        statements.append(str(CreateTable(table).compile(dialect=DIALECT)))
        for index in table.indexes:
            statements.append(str(CreateIndex(index).compile(dialect=DIALECT)))
    return statements


def compile_statement(stmt: ClauseElement) -> tuple[str, dict[str, Any]]:
    """The SQL text (psycopg's ``%(name)s`` placeholders) and parameters of a statement."""
    compiled = stmt.compile(dialect=DIALECT, compile_kwargs={"render_postcompile": True})
    return str(compiled), dict(compiled.params)


async def fetch(conn: psycopg.AsyncConnection[Any], stmt: ClauseElement) -> list[tuple[Any, ...]]:
    """Run a Core statement on the framework's connection; all rows as tuples."""
    query, params = compile_statement(stmt)
    async with conn.cursor(row_factory=tuple_row) as cur:
        await cur.execute(query.encode(), params)  # the text comes from the compiler
        return await cur.fetchall() if cur.description is not None else []
