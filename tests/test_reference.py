"""Examples pinning the reference target (modelcheck/_reference) to docs/domain.md.

Every operation goes through :class:`ReferenceTarget` on a ``psycopg.AsyncConnection``
(pytest-asyncio is not used: each test runs its coroutine with ``asyncio.run``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

import psycopg
import pytest

from modelcheck._domain.errors import ERROR_KINDS, DomainError
from modelcheck._reference.target import ReferenceTarget
from modelcheck._target import Drift, Target

T = ReferenceTarget()
Conn = psycopg.AsyncConnection[Any]


def run(dsn: str, body: Callable[[Conn], Awaitable[Any]]) -> Any:
    """Run ``body(conn)`` on a fresh autocommit AsyncConnection to ``dsn``."""

    async def main() -> Any:
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
            return await body(conn)

    return asyncio.run(main())


def col(name: str, type: str = "integer", nullable: bool = True, default: str | None = None) -> dict[str, Any]:
    return {"name": name, "type": type, "nullable": nullable, "default": default}


def create_table(table: str, *columns: dict[str, Any]) -> dict[str, Any]:
    return {"op": "create_table", "table": table, "columns": list(columns)}


def create_index(index: str, table: str, *columns: str, unique: bool = False) -> dict[str, Any]:
    return {"op": "create_index", "index": index, "table": table, "columns": list(columns), "unique": unique}


def insert(table: str, *rows: list[str | None]) -> dict[str, Any]:
    return {"op": "insert_rows", "table": table, "rows": [list(r) for r in rows]}


async def fetch(conn: Conn, query: str, *params: Any) -> list[tuple[Any, ...]]:
    cur = await conn.execute(query.encode(), params or None)
    return await cur.fetchall()


async def tree(conn: Conn, schema: str = "wt_1") -> Any:
    return (await fetch(conn, "SELECT vstore.tree_json(%s)", schema))[0][0]


async def raises(kind: str, call: Awaitable[Any], sqlstate: str | None = None) -> DomainError:
    with pytest.raises(DomainError) as info:
        await call
    error = info.value
    assert error.kind == kind, error
    assert error.sqlstate == (sqlstate or ERROR_KINDS[kind]), error
    return error


def test_is_a_target() -> None:
    assert isinstance(T, Target)
    assert T.name == "reference"
    assert T.store_schemas == ("vstore",)


def test_install_state(reference_dsn: str) -> None:
    async def body(conn: Conn) -> None:
        rows = await fetch(
            conn,
            "SELECT pk, identifier, parent_pk, status, version, schema_name, tree_hash,"
            " head_pk FROM vstore.branches",
        )
        empty = (await fetch(conn, "SELECT encode(sha256(''), 'hex')"))[0][0]
        assert rows == [(1, "main", None, "active", "0.0.0", "wt_1", empty, 1)]
        root = await fetch(
            conn,
            "SELECT identifier, message, schema_hash, version,"
            " vstore.commit_identifier('main', '', NULL, schema_hash, 'root') FROM vstore.commits",
        )
        assert root[0][:4] == (root[0][4], "root", empty, "0.0.0")
        assert await fetch(conn, "SELECT count(*) FROM vstore.commit_parents") == [(0,)]
        assert await T.log(conn, "main") == (root[0][0],)
        assert await T.verify(conn) == ()

    run(reference_dsn, body)


# -- every error kind, pinned to its SQLSTATE ---------------------------------------

OPS = [create_table("t", col("a"))]


async def _deleted(conn: Conn) -> None:
    await T.create_branch(conn, "gone", "main")
    await T.delete_branch(conn, "gone")


async def _two_migrations(conn: Conn) -> None:
    await T.apply_migration(conn, "main", "0001_a", OPS)
    await T.apply_migration(conn, "main", "0002_b", [create_table("u", col("a"))])


async def e_nul_in_text(conn: Conn) -> None:
    await raises("nul_in_text", T.create_branch(conn, "a\x00b", "main"))
    await raises("nul_in_text", T.commit(conn, "main", "hi\x00"))
    await raises(
        "nul_in_text", T.apply_migration(conn, "main", "0001_a", [create_table("t", col("a\x00"))])
    )


async def e_invalid_name(conn: Conn) -> None:
    await raises("invalid_name", T.create_branch(conn, "", "main"))
    await raises("invalid_name", T.apply_migration(conn, "main", "1_bad", OPS))
    await raises("invalid_name", T.apply_migration(conn, "main", "0001_Bad", OPS))
    await raises("invalid_name", T.apply_migration(conn, "main", "0001_a", [create_table("", col("a"))]))
    await raises("invalid_name", T.merge(conn, "main", "main"))


async def e_name_too_long(conn: Conn) -> None:
    await raises("name_too_long", T.create_branch(conn, "x" * 64, "main"))
    await raises("name_too_long", T.create_branch(conn, "é" * 32, "main"))  # 64 bytes
    await raises("name_too_long", T.apply_migration(conn, "main", "0001_" + "a" * 59, OPS))
    await raises(
        "name_too_long", T.apply_migration(conn, "main", "0001_a", [create_table("t", col("c" * 64))])
    )


async def e_message_too_long(conn: Conn) -> None:
    await raises("message_too_long", T.commit(conn, "main", "é" * 4097))
    await T.commit(conn, "main", "é" * 4096)


async def e_invalid_operation(conn: Conn) -> None:
    bad: list[Any] = [
        [],
        [{"op": "create_table", "table": "t"}],
        [{"op": "nope", "table": "t"}],
        [create_table("t", col("a", "int"))],
        [create_table("t", col("a", "varchar(5)"))],
        [create_table("t", col("a", "character varying(101)"))],
        [create_table("t", col("a", "numeric(5,6)"))],
        [create_table("t")],
        [{**create_table("t", col("a")), "extra": 1}],
        [create_index("i", "t")],
        [{"op": "insert_rows", "table": "t", "rows": []}],
        [{"op": "insert_rows", "table": "t", "rows": [[1]]}],
        [{"op": "alter_column_type", "table": "t", "column": "a", "type": "float"}],
        [OPS[0], "not an object"],
    ]
    for ops in bad:
        await raises("invalid_operation", T.apply_migration(conn, "main", "0001_a", ops))
    # Validation runs for the whole list before any DDL: op 0 would fail (42P01) first.
    await raises(
        "invalid_operation",
        T.apply_migration(conn, "main", "0001_a", [{"op": "drop_table", "table": "x"}, {"op": "?"}]),
    )


async def e_branch_not_found(conn: Conn) -> None:
    await raises("branch_not_found", T.create_branch(conn, "a", "nope"))
    await raises("branch_not_found", T.commit(conn, "nope", "m"))
    await raises("branch_not_found", T.log(conn, "nope"))
    await raises("branch_not_found", T.merge(conn, "nope", "main"))


async def e_branch_deleted(conn: Conn) -> None:
    await _deleted(conn)
    await raises("branch_deleted", T.commit(conn, "gone", "m"))
    await raises("branch_deleted", T.delete_branch(conn, "gone"))
    await raises("branch_deleted", T.create_branch(conn, "b", "gone"))
    await raises("branch_deleted", T.apply_migration(conn, "gone", "0001_a", OPS))
    await raises("branch_deleted", T.merge(conn, "main", "gone"))
    await raises("branch_deleted", T.log(conn, "gone"))


async def e_branch_exists(conn: Conn) -> None:
    await T.create_branch(conn, "b", "main")
    await raises("branch_exists", T.create_branch(conn, "b", "main"))
    await raises("branch_exists", T.create_branch(conn, "main", "b"))
    await _deleted(conn)
    await raises("branch_exists", T.create_branch(conn, "gone", "main"))


async def e_protected_branch(conn: Conn) -> None:
    await raises("protected_branch", T.delete_branch(conn, "main"))


async def e_schema_drift(conn: Conn) -> None:
    await conn.execute('CREATE TABLE wt_1."behind the back" (x int)')
    await raises("schema_drift", T.commit(conn, "main", "m"))


async def e_migration_exists(conn: Conn) -> None:
    await T.apply_migration(conn, "main", "0001_a", OPS)
    await raises("migration_exists", T.apply_migration(conn, "main", "0001_a", OPS))
    await T.rollback_migration(conn, "0001_a")
    await raises("migration_exists", T.apply_migration(conn, "main", "0001_a", OPS))


async def e_checksum_mismatch(conn: Conn) -> None:
    await T.apply_migration(conn, "main", "0001_a", OPS)
    await T.create_branch(conn, "b", "main")
    other = [create_table("t2", col("a"))]
    await raises("checksum_mismatch", T.apply_migration(conn, "b", "0001_a", other))


async def e_migration_not_found(conn: Conn) -> None:
    await raises("migration_not_found", T.rollback_migration(conn, "0001_a"))


async def e_migration_not_applied(conn: Conn) -> None:
    await T.apply_migration(conn, "main", "0001_a", OPS)
    await T.rollback_migration(conn, "0001_a")
    await raises("migration_not_applied", T.rollback_migration(conn, "0001_a"))


async def e_not_latest_migration(conn: Conn) -> None:
    await _two_migrations(conn)
    await raises("not_latest_migration", T.rollback_migration(conn, "0001_a"))


async def e_column_has_default(conn: Conn) -> None:
    ops = [
        create_table("t", col("a", default="5")),
        {"op": "alter_column_type", "table": "t", "column": "a", "type": "bigint"},
    ]
    await raises("column_has_default", T.apply_migration(conn, "main", "0001_a", ops))


async def e_uncommitted_changes(conn: Conn) -> None:
    await T.create_branch(conn, "b", "main")
    await T.apply_migration(conn, "main", "0001_a", OPS)
    await raises("uncommitted_changes", T.merge(conn, "b", "main"))


async def e_merge_conflict(conn: Conn) -> None:
    await T.create_branch(conn, "b", "main")
    await T.apply_migration(conn, "main", "0001_a", [create_table("t", col("a"))])
    await T.commit(conn, "main", "t with integer")
    await T.apply_migration(conn, "b", "0002_b", [create_table("t", col("a", "text"))])
    await T.commit(conn, "b", "t with text")
    await raises("merge_conflict", T.merge(conn, "b", "main"))


async def e_not_found(conn: Conn) -> None:
    await raises("not_found", T.resolve(conn, "branch", "nope"))
    await raises("not_found", T.resolve(conn, "commit", 999))
    await raises("not_found", T.resolve(conn, "migration", UUID(int=0)))


async def e_ddl(conn: Conn) -> None:
    await raises("ddl", T.apply_migration(conn, "main", "0001_a", [{"op": "drop_table", "table": "x"}]), "42P01")
    await T.apply_migration(conn, "main", "0002_a", OPS)
    cases: list[tuple[str, list[dict[str, Any]]]] = [
        ("42P07", OPS),
        ("42P07", [create_index("t", "t", "a")]),
        ("42703", [{"op": "drop_column", "table": "t", "column": "zz"}]),
        ("42701", [{"op": "add_column", "table": "t", "column": col("a")}]),
        ("42704", [{"op": "drop_index", "index": "zz"}]),
        ("42809", [{"op": "drop_index", "index": "t"}]),
        ("23502", [insert("t", ["1"]), {"op": "add_column", "table": "t", "column": col("b", nullable=False)}]),
        ("23505", [insert("t", ["1"], ["1"]), create_index("u", "t", "a", unique=True)]),
        ("22P02", [insert("t", ["x"])]),
        ("22003", [insert("t", ["99999999999"])]),
        ("22001", [create_table("v", col("s", "character varying(3)")), insert("v", ["abcd"])]),
        ("42846", [{"op": "alter_column_type", "table": "t", "column": "a", "type": "text[]"}]),
        ("42601", [insert("t", ["1", "2"])]),
    ]
    for n, (sqlstate, ops) in enumerate(cases):
        identifier = f"{n + 10:04}_x"
        await raises("ddl", T.apply_migration(conn, "main", identifier, ops), sqlstate)


SCENARIOS: dict[str, Callable[[Conn], Awaitable[None]]] = {
    name.removeprefix("e_"): fn for name, fn in globals().items() if name.startswith("e_")
}


def test_every_error_kind_has_a_scenario() -> None:
    assert set(SCENARIOS) == {*ERROR_KINDS, "ddl"}


@pytest.mark.parametrize("kind", sorted(SCENARIOS))
def test_error_kind(reference_dsn: str, kind: str) -> None:
    run(reference_dsn, SCENARIOS[kind])
