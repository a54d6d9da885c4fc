"""The ``vstore`` tables as SQLAlchemy Core metadata, and how statements reach psycopg.

The framework owns the connections (a :class:`psycopg.AsyncConnection` per call), so
statements are compiled with the psycopg dialect and executed on that connection:
no engine, no pool. Trees and operation lists are kept as JSON text in extra columns.
"""

from __future__ import annotations

from typing import Any, Final

import psycopg
from psycopg.rows import tuple_row
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    ForeignKey,
    Identity,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    Uuid,
    text,
)
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg
from sqlalchemy.schema import CreateIndex, CreateTable
from sqlalchemy.sql import ClauseElement

DIALECT: Final = PGDialect_psycopg()  # type: ignore[no-untyped-call]  # untyped in SQLAlchemy
SCHEMA: Final = "vstore"

metadata = MetaData(schema=SCHEMA)

branches = Table(
    "branches",
    metadata,
    Column("pk", BigInteger, Identity(always=True), primary_key=True),
    Column("id", Uuid, nullable=False, unique=True, server_default=text("gen_random_uuid()")),
    Column("identifier", Text, nullable=False, unique=True),
    Column("parent_pk", BigInteger, ForeignKey("vstore.branches.pk"), nullable=True),
    # No foreign key: the root commit and main reference each other at install.
    Column("head_pk", BigInteger, nullable=False),
    Column("status", Text, CheckConstraint("status IN ('active', 'deleted')"), nullable=False),
    Column("version", Text, nullable=False),
    Column("schema_name", Text, nullable=False),
    Column("tree_hash", Text, nullable=False),
    # Extra: the recorded tree as JSON text (verify names the objects that drifted).
    Column("tree", Text, nullable=False),
)

commits = Table(
    "commits",
    metadata,
    Column("pk", BigInteger, Identity(always=True), primary_key=True),
    Column("id", Uuid, nullable=False, unique=True, server_default=text("gen_random_uuid()")),
    Column("identifier", Text, nullable=False, unique=True),
    Column("branch_pk", BigInteger, ForeignKey("vstore.branches.pk"), nullable=False),
    Column("message", Text, nullable=False),
    Column("schema_hash", Text, nullable=False),
    Column("version", Text, nullable=False),
    # Extra: the commit's tree as JSON text (version bumps and three-way merges).
    Column("tree", Text, nullable=False),
)

commit_parents = Table(
    "commit_parents",
    metadata,
    Column("commit_pk", BigInteger, ForeignKey("vstore.commits.pk"), nullable=False),
    Column("position", Integer, CheckConstraint("position IN (0, 1)"), nullable=False),
    Column("parent_pk", BigInteger, ForeignKey("vstore.commits.pk"), nullable=False),
    PrimaryKeyConstraint("commit_pk", "position"),
)

migrations = Table(
    "migrations",
    metadata,
    Column("pk", BigInteger, Identity(always=True), primary_key=True),
    Column("id", Uuid, nullable=False, unique=True, server_default=text("gen_random_uuid()")),
    Column("identifier", Text, nullable=False, unique=True),
    Column("branch_pk", BigInteger, ForeignKey("vstore.branches.pk"), nullable=False),
    Column("checksum", Text, nullable=False),
    Column("status", Text, CheckConstraint("status IN ('applied', 'rolled_back')"), nullable=False),
    # Extra: the operations and the inverse recorded at apply time, as JSON text.
    Column("operations", Text, nullable=False),
    Column("inverse", Text, nullable=False),
)


def ddl_statements() -> list[str]:
    """``CREATE TABLE``/``CREATE INDEX`` for the store, compiled for Postgres."""
    statements = []
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
