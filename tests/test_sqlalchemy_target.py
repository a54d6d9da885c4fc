"""Example tests for the SQLAlchemy target (the machines in ``machines/`` are the real check)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import psycopg
import pytest

from modelcheck.machine import installer_for
from modelcheck.suites.vstore.domain.errors import DomainError
from modelcheck.suites.vstore.domain.hashing import commit_identifier, tree_hash
from modelcheck.suites.vstore.domain.model import Model
from modelcheck.suites.vstore.domain.tree import Column, Table, Tree
from modelcheck.suites.vstore.results import Drift
from modelcheck.suites.vstore.snapshot import Snapshot
from modelcheck.suites.vstore.spec import VSTORE, bind_keys
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
            "SELECT b.branch_no, b.workspace, b.state::text, b.semver, b.recorded_hash,"
            " r.ident, r.note, r.parents"
            " FROM sa_store.branch b JOIN sa_store.revision r ON r.revision_no = b.head_revision"
        ).fetchall()
        schemas = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = 'wt_1'").fetchall()
    assert row == [(1, "wt_1", "active", "0.0.0", tree_hash(Tree()), root, "root", [])]
    assert schemas == [(1,)]


def test_the_layout_is_its_own(dsn: str) -> None:
    """No ``vstore`` tables: its own schema, a parents array, statuses as ENUM types."""
    with psycopg.connect(dsn) as conn:
        schemas = {r[0] for r in conn.execute("SELECT nspname FROM pg_namespace").fetchall()}
        tables = conn.execute(
            "SELECT table_name::text FROM information_schema.tables"
            " WHERE table_schema = 'sa_store' ORDER BY 1"
        ).fetchall()
        columns: dict[str, str] = dict(
            conn.execute(
                "SELECT table_name || '.' || column_name, format_type(atttypid, atttypmod)"
                " FROM information_schema.columns"
                " JOIN pg_attribute ON attrelid = format('%I.%I', table_schema, table_name)"
                "::regclass AND attname = column_name"
                " WHERE table_schema = 'sa_store'"
            ).fetchall()
        )
        enums = conn.execute(
            "SELECT t.typname::text, array_agg(e.enumlabel::text ORDER BY e.enumsortorder)"
            " FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace"
            " JOIN pg_enum e ON e.enumtypid = t.oid"
            " WHERE n.nspname = 'sa_store' AND t.typtype = 'e' GROUP BY 1 ORDER BY 1"
        ).fetchall()
    assert "vstore" not in schemas
    assert {"sa_store", "wt_1", "modelcheck_observe"} <= schemas
    assert tables == [("branch",), ("revision",), ("schema_change",)]
    assert columns["revision.parents"] == "bigint[]"
    assert columns["branch.state"] == "sa_store.branch_state"
    assert columns["schema_change.state"] == "sa_store.change_state"
    assert columns["branch.recorded_tree"] == columns["schema_change.undo"] == "jsonb"
    assert enums == [
        ("branch_state", ["active", "deleted"]),
        ("change_state", ["applied", "rolled_back"]),
    ]
    assert SQLAlchemyTarget.store_schemas == ("sa_store",)


def test_installs_no_default_observer(empty_dsn: str) -> None:
    """The engine's installer skips the spec's observer: only ``trees()`` is there."""
    with psycopg.connect(empty_dsn, autocommit=True) as conn:
        installer_for(SQLAlchemyTarget())(conn)
        functions = conn.execute(
            "SELECT p.proname::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
            " WHERE n.nspname = 'modelcheck_observe' ORDER BY 1"
        ).fetchall()
    assert functions == [("trees",)]


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
        assert conn.execute("SELECT count(*) FROM sa_store.schema_change").fetchone() == (0,)
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


def test_the_observer_reads_what_the_model_expects(dsn: str) -> None:
    """A merge (two parents), a deleted branch, a rolled-back migration: the observed
    state equals the spec's expected state of a model that ran the same calls."""
    add = {
        "op": "add_column",
        "table": "users",
        "column": {"name": "email", "type": "text", "nullable": True, "default": None},
    }
    rows = {"op": "insert_rows", "table": "users", "rows": [["7", None]]}
    calls: list[tuple[str, tuple[Any, ...]]] = [
        ("apply_migration", ("main", "0001_users", [USERS, rows])),
        ("commit", ("main", "users")),
        ("create_branch", ("dev", "main")),
        ("apply_migration", ("dev", "0002_email", [add])),
        ("commit", ("dev", "email")),
        ("apply_migration", ("main", "0003_email", [add])),
        ("rollback_migration", ("0003_email",)),
        ("apply_migration", ("main", "0004_orders", [{**USERS, "table": "orders"}])),
        ("commit", ("main", "orders")),
        ("create_branch", ("gone", "main")),
        ("delete_branch", ("gone",)),
        ("merge", ("dev", "main")),
    ]

    async def scenario(target: SQLAlchemyTarget, conn: Conn) -> tuple[Snapshot, Snapshot]:
        for name, args in calls:
            await getattr(target, name)(conn, *args)
        return await target.observe(conn, full=True), await target.observe(conn, full=False)

    full, quick = run(dsn, scenario)
    model = Model.initial()
    for name, args in calls:
        VSTORE.apply(model, name, args)
    for kind, rows_ in (
        ("branch", full.branches),
        ("commit", full.commits),
        ("migration", full.migrations),
    ):
        for identifier, row in rows_.items():
            assert row.pk is not None
            assert row.id is not None
            bind_keys(model, kind, identifier, row.pk, row.id)  # type: ignore[arg-type]
    assert full == VSTORE.expected(model, full=True)
    assert quick == VSTORE.expected(model, full=False)
    assert quick.trees == {}
    merge = full.commits[full.branches["main"].head]
    assert merge.message == "merge dev into main"
    assert [full.commits[p].message for p in merge.parents] == ["orders", "email"]  # [T, S]
    assert full.migrations["0003_email"].status == "rolled_back"
    assert full.branches["gone"].status == "deleted"
    assert "wt_3" not in full.trees
    users = full.trees["wt_1"].tables["users"]
    assert users.columns[-1] == Column("email", "text", True, None)
    assert users == Table("users", users.columns, (("7", None, None),))


def test_a_quick_observation_does_not_wait_for_open_ddl(dsn: str) -> None:
    """``full=False`` reads no working tree, so another session's open DDL cannot block it."""
    run(dsn, lambda t, c: t.apply_migration(c, "main", "0001_users", [USERS]))

    async def scenario(target: SQLAlchemyTarget, conn: Conn) -> Snapshot:
        async with await psycopg.AsyncConnection.connect(dsn) as other:
            await other.execute('ALTER TABLE wt_1.users ADD COLUMN "x" int')  # left open
            await conn.execute("SET lock_timeout = '1s'")
            quick = await target.observe(conn, full=False)
            with pytest.raises(psycopg.errors.LockNotAvailable):
                await target.observe(conn, full=True)  # the trees do wait for it
            return quick

    quick = run(dsn, scenario)
    assert quick.trees == {}
    assert set(quick.branches) == {"main"}
