"""Example tests for the SQLAlchemy target (the machines in ``machines/`` are the real check)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import psycopg
import pytest

from modelcheck.suites.vstore.domain.errors import DomainError
from modelcheck.suites.vstore.domain.hashing import commit_identifier, tree_hash
from modelcheck.suites.vstore.domain.tree import Tree
from modelcheck.suites.vstore.results import Drift
from modelcheck.suites.vstore.sqlalchemy_target.target import SQLAlchemyTarget

T = TypeVar("T")
Conn = psycopg.AsyncConnection[Any]

USERS = {
    "op": "create_table",
    "table": "users",
    "columns": [
        {"name": "id", "type": "integer", "nullable": False, "default": None},
        {"name": "score", "type": "numeric(5,2)", "nullable": True, "default": "1.5"},
    ],
}


@pytest.fixture
def dsn(empty_dsn: str) -> str:
    with psycopg.connect(empty_dsn, autocommit=True) as conn:
        SQLAlchemyTarget().install(conn)
    return empty_dsn


def run(dsn: str, scenario: Callable[[SQLAlchemyTarget, Conn], Awaitable[T]]) -> T:
    async def main() -> T:
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
            return await scenario(SQLAlchemyTarget(), conn)

    return asyncio.run(main())


def error_of(dsn: str, scenario: Callable[[SQLAlchemyTarget, Conn], Awaitable[Any]]) -> str:
    with pytest.raises(DomainError) as info:
        run(dsn, scenario)
    return info.value.kind


def test_install_creates_main_and_the_root_commit(dsn: str) -> None:
    root = commit_identifier("main", [], tree_hash(Tree()), "root")
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT b.pk, b.schema_name, b.version, b.tree_hash, c.identifier, c.message"
            " FROM vstore.branches b JOIN vstore.commits c ON c.pk = b.head_pk"
        ).fetchall()
        schemas = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = 'wt_1'").fetchall()
    assert row == [(1, "wt_1", "0.0.0", tree_hash(Tree()), root, "root")]
    assert schemas == [(1,)]


def test_migrate_commit_branch_and_merge(dsn: str) -> None:
    async def scenario(target: SQLAlchemyTarget, conn: Conn) -> Any:
        applied = await target.apply_migration(conn, "main", "0001_users", [USERS])
        first = await target.commit(conn, "main", "users")
        dev = await target.create_branch(conn, "dev", "main")
        add = {
            "op": "add_column",
            "table": "users",
            "column": {"name": "email", "type": "text", "nullable": True, "default": None},
        }
        await target.apply_migration(conn, "dev", "0002_email", [add])
        await target.commit(conn, "dev", "email")
        index = {
            "op": "create_index",
            "index": "by_id",
            "table": "users",
            "columns": ["id"],
            "unique": True,
        }
        await target.apply_migration(conn, "main", "0003_index", [index])
        await target.commit(conn, "main", "index")
        merged = await target.merge(conn, "dev", "main")
        log = await target.log(conn, "main")
        again = await target.merge(conn, "dev", "main")
        forward = await target.merge(conn, "main", "dev")
        return applied, first, dev, merged, log, again, forward

    applied, first, dev, merged, log, again, forward = run(dsn, scenario)
    assert applied.migration.identifier == "0001_users"
    assert first.version == "0.1.0"
    assert dev.identifier == "dev"
    assert merged.kind == "merge"
    assert merged.version == "0.3.0"
    assert merged.commit is not None
    assert log[0] == merged.commit.identifier
    assert len(log) == 4
    assert again.kind == "up_to_date"
    assert (forward.kind, forward.version) == ("fast_forward", "0.3.0")
    assert forward.commit == merged.commit


def test_rollback_restores_the_dropped_column(dsn: str) -> None:
    async def scenario(target: SQLAlchemyTarget, conn: Conn) -> Any:
        await target.apply_migration(conn, "main", "0001_users", [USERS])
        before = await target.commit(conn, "main", "before")
        drop = {"op": "drop_column", "table": "users", "column": "score"}
        await target.apply_migration(conn, "main", "0002_drop", [drop])
        await target.rollback_migration(conn, "0002_drop")
        return before, await target.commit(conn, "main", "after")

    before, after = run(dsn, scenario)
    assert after.schema_hash == before.schema_hash


def test_verify_reports_out_of_band_changes(dsn: str) -> None:
    async def scenario(target: SQLAlchemyTarget, conn: Conn) -> Any:
        await target.apply_migration(conn, "main", "0001_users", [USERS])
        await conn.execute('ALTER TABLE wt_1.users ADD COLUMN "x" int')
        drift = await target.verify(conn)
        await target.commit(conn, "main", "drifted")
        return drift

    with pytest.raises(DomainError) as info:
        run(dsn, scenario)
    assert info.value.kind == "schema_drift"

    async def verify(target: SQLAlchemyTarget, conn: Conn) -> tuple[Drift, ...]:
        return await target.verify(conn)

    assert run(dsn, verify) == (Drift("main", ("users",)),)


@pytest.mark.parametrize(
    ("call", "kind"),
    [
        (lambda t, c: t.create_branch(c, "a\x00b", "main"), "nul_in_text"),
        (lambda t, c: t.create_branch(c, "", "main"), "invalid_name"),
        (lambda t, c: t.create_branch(c, "x" * 64, "main"), "name_too_long"),
        (lambda t, c: t.create_branch(c, "dev", "nope"), "branch_not_found"),
        (lambda t, c: t.create_branch(c, "main", "main"), "branch_exists"),
        (lambda t, c: t.delete_branch(c, "main"), "protected_branch"),
        (lambda t, c: t.commit(c, "main", "m" * 4097), "message_too_long"),
        (lambda t, c: t.apply_migration(c, "main", "1_bad", [USERS]), "invalid_name"),
        (lambda t, c: t.apply_migration(c, "main", "0001_x", []), "invalid_operation"),
        (
            lambda t, c: t.apply_migration(
                c, "main", "0001_x", [{"op": "drop_table", "table": "t", "x": 1}]
            ),
            "invalid_operation",
        ),
        (
            lambda t, c: t.apply_migration(
                c, "main", "0001_x", [{"op": "drop_table", "table": "t"}]
            ),
            "ddl",
        ),
        (lambda t, c: t.rollback_migration(c, "0001_x"), "migration_not_found"),
        (lambda t, c: t.merge(c, "main", "main"), "invalid_name"),
        (lambda t, c: t.resolve(c, "commit", "c0"), "not_found"),
        (lambda t, c: t.log(c, "nope"), "branch_not_found"),
    ],
)
def test_errors(
    dsn: str, call: Callable[[SQLAlchemyTarget, Conn], Awaitable[Any]], kind: str
) -> None:
    assert error_of(dsn, call) == kind


def test_reused_identifiers_and_deleted_branches(dsn: str) -> None:
    async def reuse(target: SQLAlchemyTarget, conn: Conn) -> None:
        await target.apply_migration(conn, "main", "0001_users", [USERS])
        await target.apply_migration(
            conn, "main", "0001_users", [{"op": "drop_table", "table": "x"}]
        )

    assert error_of(dsn, reuse) == "checksum_mismatch"

    async def deleted(target: SQLAlchemyTarget, conn: Conn) -> None:
        await target.create_branch(conn, "gone", "main")
        await target.delete_branch(conn, "gone")
        await target.commit(conn, "gone", "x")

    assert error_of(dsn, deleted) == "branch_deleted"


def test_failed_migration_leaves_nothing(dsn: str) -> None:
    bad_row = {"op": "insert_rows", "table": "users", "rows": [["x", None]]}

    async def scenario(target: SQLAlchemyTarget, conn: Conn) -> None:
        await target.apply_migration(conn, "main", "0001_users", [USERS, bad_row])

    with pytest.raises(DomainError) as info:
        run(dsn, scenario)
    assert (info.value.kind, info.value.sqlstate) == ("ddl", "22P02")
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT count(*) FROM vstore.migrations").fetchone() == (0,)
        assert conn.execute("SELECT to_regclass('wt_1.users')").fetchone() == (None,)


def test_resolve_by_each_key(dsn: str) -> None:
    async def scenario(target: SQLAlchemyTarget, conn: Conn) -> Any:
        main = await target.resolve(conn, "branch", "main")
        return (
            main,
            await target.resolve(conn, "branch", main.pk),
            await target.resolve(conn, "branch", main.id),
        )

    by_name, by_pk, by_id = run(dsn, scenario)
    assert by_name == by_pk == by_id


def test_an_error_aborts_the_callers_open_transaction(dsn: str) -> None:
    """Inside an open transaction an operation acts like one statement: failing aborts it."""

    async def scenario(target: SQLAlchemyTarget, conn: Conn) -> Any:
        await conn.execute("BEGIN")
        await target.create_branch(conn, "feat", "main")
        with pytest.raises(DomainError) as info:
            await target.delete_branch(conn, "main")
        status = conn.info.transaction_status
        await conn.execute("ROLLBACK")
        return info.value.kind, status

    kind, status = run(dsn, scenario)
    assert kind == "protected_branch"
    assert status == psycopg.pq.TransactionStatus.INERROR
