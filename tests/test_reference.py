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

from modelcheck.suites.vstore.domain.errors import ERROR_KINDS, DomainError
from modelcheck.suites.vstore.reference.target import ReferenceTarget
from modelcheck.suites.vstore.results import Drift
from modelcheck.target import Target

T = ReferenceTarget()
Conn = psycopg.AsyncConnection[Any]


def run(dsn: str, body: Callable[[Conn], Awaitable[Any]]) -> Any:
    """Run ``body(conn)`` on a fresh autocommit AsyncConnection to ``dsn``."""

    async def main() -> Any:
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
            return await body(conn)

    return asyncio.run(main())


def col(
    name: str, type: str = "integer", nullable: bool = True, default: str | None = None
) -> dict[str, Any]:
    return {"name": name, "type": type, "nullable": nullable, "default": default}


def create_table(table: str, *columns: dict[str, Any]) -> dict[str, Any]:
    return {"op": "create_table", "table": table, "columns": list(columns)}


def create_index(index: str, table: str, *columns: str, unique: bool = False) -> dict[str, Any]:
    return {
        "op": "create_index",
        "index": index,
        "table": table,
        "columns": list(columns),
        "unique": unique,
    }


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
    await raises(
        "invalid_name", T.apply_migration(conn, "main", "0001_a", [create_table("", col("a"))])
    )
    await raises("invalid_name", T.merge(conn, "main", "main"))


async def e_name_too_long(conn: Conn) -> None:
    await raises("name_too_long", T.create_branch(conn, "x" * 64, "main"))
    await raises("name_too_long", T.create_branch(conn, "é" * 32, "main"))  # 64 bytes
    await raises("name_too_long", T.apply_migration(conn, "main", "0001_" + "a" * 59, OPS))
    await raises(
        "name_too_long",
        T.apply_migration(conn, "main", "0001_a", [create_table("t", col("c" * 64))]),
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
        T.apply_migration(
            conn, "main", "0001_a", [{"op": "drop_table", "table": "x"}, {"op": "?"}]
        ),
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
    await raises(
        "ddl",
        T.apply_migration(conn, "main", "0001_a", [{"op": "drop_table", "table": "x"}]),
        "42P01",
    )
    await T.apply_migration(conn, "main", "0002_a", OPS)
    cases: list[tuple[str, list[dict[str, Any]]]] = [
        ("42P07", OPS),
        ("42P07", [create_index("t", "t", "a")]),
        ("42703", [{"op": "drop_column", "table": "t", "column": "zz"}]),
        ("42701", [{"op": "add_column", "table": "t", "column": col("a")}]),
        ("42704", [{"op": "drop_index", "index": "zz"}]),
        ("42809", [{"op": "drop_index", "index": "t"}]),
        (
            "23502",
            [
                insert("t", ["1"]),
                {"op": "add_column", "table": "t", "column": col("b", nullable=False)},
            ],
        ),
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


# -- commits and versions -----------------------------------------------------------


def test_commit_versions(reference_dsn: str) -> None:
    async def step(
        conn: Conn, ops: list[dict[str, Any]] | None, version: str, n: list[int]
    ) -> None:
        if ops:
            n[0] += 1
            await T.apply_migration(conn, "main", f"{n[0]:04}_m", ops)
        result = await T.commit(conn, "main", f"to {version}")
        assert result.version == version
        branch = await fetch(conn, "SELECT version, tree_hash FROM vstore.branches WHERE pk = 1")
        assert branch == [(version, result.schema_hash)]
        assert result.schema_hash == (await fetch(conn, "SELECT vstore.tree_hash('wt_1')"))[0][0]

    async def body(conn: Conn) -> None:
        n = [0]
        await step(conn, None, "0.0.1", n)  # no change: patch
        await step(conn, [create_table("t", col("a"), col("b"))], "0.1.0", n)  # added: minor
        await step(conn, [create_index("i", "t", "a")], "0.2.0", n)
        await step(conn, [insert("t", ["1", "2"])], "0.2.1", n)  # rows only: patch
        await step(conn, [{"op": "add_column", "table": "t", "column": col("c")}], "0.3.0", n)
        await step(
            conn,
            [{"op": "alter_column_type", "table": "t", "column": "b", "type": "bigint"}],
            "1.0.0",
            n,
        )
        await step(conn, [{"op": "drop_column", "table": "t", "column": "c"}], "2.0.0", n)
        await step(
            conn, [{"op": "drop_index", "index": "i"}, create_index("i", "t", "a", "b")], "3.0.0", n
        )
        await step(
            conn,
            [{"op": "rename_column", "table": "t", "column": "b", "new_name": "B"}],
            "4.0.0",
            n,
        )
        log = await T.log(conn, "main")
        assert len(log) == 10
        head = await fetch(
            conn,
            "SELECT c.identifier FROM vstore.commits c JOIN vstore.branches b ON b.head_pk = c.pk",
        )
        assert log[0] == head[0][0]
        # A new branch starts with its source's head and version.
        await T.create_branch(conn, "b", "main")
        assert (await T.commit(conn, "b", "")).version == "4.0.1"

    run(reference_dsn, body)


def test_commit_identifier_and_messages_kept_byte_for_byte(reference_dsn: str) -> None:
    messages = [
        "",
        " leading and trailing ",
        "emoji 🦄👩‍👩‍👧 ok",
        "tab\tnew\nline",
        "\\ 'quote' \"dq\"",
        "é" * 4096,
    ]

    async def body(conn: Conn) -> None:
        for message in messages:
            parent = (await T.log(conn, "main"))[0]
            result = await T.commit(conn, "main", message)
            expected = await fetch(
                conn,
                "SELECT vstore.commit_identifier('main', %s, NULL, %s, %s)",
                parent,
                result.schema_hash,
                message,
            )
            assert result.commit.identifier == expected[0][0]
            stored = await fetch(
                conn, "SELECT message FROM vstore.commits WHERE pk = %s", result.commit.pk
            )
            assert stored == [(message,)]
            parents = await fetch(
                conn,
                "SELECT position, parent_pk FROM vstore.commit_parents WHERE commit_pk = %s",
                result.commit.pk,
            )
            assert parents == [(0, (await T.resolve(conn, "commit", parent)).pk)]

    run(reference_dsn, body)


# -- migrations ---------------------------------------------------------------------

ROLLBACK_OPS: list[dict[str, Any]] = [
    {"op": "drop_table", "table": "keep"},
    {"op": "drop_column", "table": "t", "column": "b"},
    {"op": "rename_column", "table": "t", "column": "a", "new_name": "A b"},
    {"op": "alter_column_type", "table": "t", "column": "c", "type": "text"},
    {"op": "drop_index", "index": "t_c"},
    create_table("new", col("x", "text[]", default="{a,b}")),
    create_index("new_x", "new", "x"),
    {"op": "add_column", "table": "t", "column": col("d", "numeric(5,2)", False, "1.555")},
    insert("t", ["1", "7", "2.5"]),
]


def test_apply_and_rollback_restore_the_structure(reference_dsn: str) -> None:
    setup = [
        create_table(
            "keep",
            col("k", "character varying(5)", False, "ab"),
            col("n", "boolean", default="yes"),
        ),
        create_index("keep_k", "keep", "k", unique=True),
        create_table("t", col("a", default="-5"), col("b", "text", default="x"), col("c")),
        create_index("t_b", "t", "a", "b"),
        create_index("t_c", "t", "c"),
        insert("t", ["1", "y", "2"]),
    ]

    async def body(conn: Conn) -> None:
        await T.apply_migration(conn, "main", "0001_setup", setup)
        before = await tree(conn)
        hash_before = (await fetch(conn, "SELECT tree_hash FROM vstore.branches WHERE pk = 1"))[0][
            0
        ]
        applied = await T.apply_migration(conn, "main", "0002_change", ROLLBACK_OPS)
        checksum = await fetch(
            conn, "SELECT vstore.operations_checksum(%s)", psycopg.types.json.Jsonb(ROLLBACK_OPS)
        )
        assert applied.checksum == checksum[0][0]
        assert applied.migration.identifier == "0002_change"
        after = await tree(conn)
        assert after != before
        assert (
            await fetch(
                conn,
                "SELECT tree_hash = vstore.tree_hash('wt_1') FROM vstore.branches WHERE pk = 1",
            )
        ) == [(True,)]
        await T.rollback_migration(conn, "0002_change")
        restored = await tree(conn)
        # Dropped columns come back last; everything else is as it was.
        t_before = before["tables"].pop("t")
        t_after = restored["tables"].pop("t")
        assert [c["name"] for c in t_after["columns"]] == ["a", "c", "b"]
        assert sorted(t_after["columns"], key=str) == sorted(t_before["columns"], key=str)
        assert restored == before
        status = await fetch(
            conn, "SELECT status FROM vstore.migrations WHERE identifier = '0002_change'"
        )
        assert status == [("rolled_back",)]
        await T.rollback_migration(conn, "0001_setup")
        assert await tree(conn) == {"tables": {}, "indexes": {}}
        current = await fetch(conn, "SELECT tree_hash FROM vstore.branches WHERE pk = 1")
        assert current[0][0] != hash_before
        assert await T.verify(conn) == ()

    run(reference_dsn, body)


def test_failing_migration_leaves_nothing(reference_dsn: str) -> None:
    async def body(conn: Conn) -> None:
        first = await T.apply_migration(conn, "main", "0001_a", [create_table("t", col("a"))])
        state = "SELECT vstore.tree_json('wt_1'), tree_hash, tree FROM vstore.branches WHERE pk = 1"
        snapshot = await fetch(conn, state)
        for k in range(1, 4):
            ops = [create_table("u", col("a")), create_index("ui", "u", "a"), insert("u", ["1"])]
            ops.insert(k, {"op": "drop_table", "table": "missing"})
            await raises("ddl", T.apply_migration(conn, "main", "0002_b", ops), "42P01")
            assert await fetch(conn, state) == snapshot
            assert await fetch(conn, "SELECT identifier FROM vstore.migrations") == [("0001_a",)]
        # pks are never reused, even after a failure consumed one.
        second = await T.apply_migration(conn, "main", "0002_b", [create_table("u", col("a"))])
        assert second.migration.pk > first.migration.pk

    run(reference_dsn, body)


HOSTILE = [
    'quo"te',
    "it's",
    "with space",
    "dot.ted",
    "ünïcödé 表",
    "MixedCase",
    "select",
    "table",
    "x" * 63,
    "é" * 31 + "x",
    " ",
    "%s %I %L $1",
    "wt_1",
    "main",
]


def test_hostile_names_are_stored_exactly(reference_dsn: str) -> None:
    async def body(conn: Conn) -> None:
        for n, name in enumerate(HOSTILE):
            ops = [
                create_table(name, col(name, "text", default=name), col("o")),
                create_index(name + "_i" if len(name.encode()) < 62 else f"i{n}", name, name, "o"),
                insert(name, [name, None]),
            ]
            await T.apply_migration(conn, "main", f"{n:04}_hostile", ops)
        for name in HOSTILE:
            if name != "main":
                branch = await T.create_branch(conn, name, "main")
                assert branch.identifier == name
                assert (await T.resolve(conn, "branch", name)).pk == branch.pk
        live = await tree(conn)
        assert set(live["tables"]) == set(HOSTILE)
        for name in HOSTILE:
            assert [c["name"] for c in live["tables"][name]["columns"]] == [name, "o"]
        rows = await fetch(conn, 'SELECT "select"::text FROM wt_1."select"')
        assert rows == [("select",)]
        names = {r[0] for r in await fetch(conn, "SELECT identifier FROM vstore.branches")}
        assert names == set(HOSTILE)
        # The copies have the same tables, indexes and rows.
        last = await fetch(conn, "SELECT schema_name FROM vstore.branches ORDER BY pk DESC LIMIT 1")
        copy = await tree(conn, last[0][0])
        assert copy == live
        assert await T.verify(conn) == ()

    run(reference_dsn, body)


# -- merges -------------------------------------------------------------------------


async def migrate_and_commit(
    conn: Conn, branch: str, identifier: str, ops: list[dict[str, Any]]
) -> str:
    await T.apply_migration(conn, branch, identifier, ops)
    return (await T.commit(conn, branch, identifier)).commit.identifier


def test_merge_up_to_date_and_fast_forward(reference_dsn: str) -> None:
    async def body(conn: Conn) -> None:
        await T.create_branch(conn, "feature", "main")
        same = await T.merge(conn, "feature", "main")
        assert (same.kind, same.commit, same.version) == ("up_to_date", None, "0.0.0")
        head = await migrate_and_commit(
            conn,
            "feature",
            "0001_t",
            [
                create_table("t", col("a", default="1")),
                create_index("i", "t", "a"),
                insert("t", ["5"]),
            ],
        )
        assert (await T.merge(conn, "main", "feature")).kind == "up_to_date"
        ff = await T.merge(conn, "feature", "main")
        assert ff.kind == "fast_forward"
        assert ff.commit is not None
        assert ff.commit.identifier == head
        assert ff.version == "0.1.0"
        assert await T.log(conn, "main") == await T.log(conn, "feature")
        main = await fetch(
            conn,
            "SELECT version, tree_hash, vstore.tree_hash('wt_1') FROM vstore.branches WHERE pk = 1",
        )
        feature_hash = await fetch(
            conn, "SELECT schema_hash FROM vstore.commits WHERE identifier = %s", head
        )
        assert main == [("0.1.0", feature_hash[0][0], feature_hash[0][0])]
        assert await tree(conn, "wt_1") == await tree(conn, "wt_2")
        assert (
            await fetch(conn, "SELECT a FROM wt_1.t") == []
        )  # rows are not merged, only structure
        assert await T.verify(conn) == ()

    run(reference_dsn, body)


def test_three_way_merge(reference_dsn: str) -> None:
    async def body(conn: Conn) -> None:
        await migrate_and_commit(
            conn,
            "main",
            "0001_base",
            [
                create_table("t", col("a"), col("b", "text")),
                create_table("gone", col("g")),
                insert("t", ["1", "x"]),
            ],
        )
        await T.create_branch(conn, "feature", "main")
        feature_head = await migrate_and_commit(
            conn,
            "feature",
            "0002_feature",
            [
                {"op": "add_column", "table": "t", "column": col("f", "text", default="new")},
                {"op": "alter_column_type", "table": "t", "column": "a", "type": "bigint"},
                create_table("fresh", col("z")),
                create_index("t_f", "t", "f"),
            ],
        )
        main_head = await migrate_and_commit(
            conn,
            "main",
            "0003_main",
            [
                {"op": "drop_table", "table": "gone"},
                {"op": "add_column", "table": "t", "column": col("m", nullable=False, default="7")},
                insert("t", ["2", "y", "8"]),
            ],
        )
        result = await T.merge(conn, "feature", "main")
        assert result.kind == "merge"
        assert result.commit is not None
        assert result.version == "2.0.0"  # main was 1.0.0; a changed type: major
        live = await tree(conn)
        assert [c["name"] for c in live["tables"]["t"]["columns"]] == ["a", "b", "m", "f"]
        assert live["tables"]["t"]["columns"][0]["type"] == "bigint"
        assert set(live["tables"]) == {"t", "fresh"}
        assert set(live["indexes"]) == {"t_f"}
        rows = await fetch(conn, "SELECT a::text, b, m::text, f FROM wt_1.t ORDER BY a")
        assert rows == [("1", "x", "7", "new"), ("2", "y", "8", "new")]
        message = await fetch(
            conn, "SELECT message FROM vstore.commits WHERE pk = %s", result.commit.pk
        )
        assert message == [("merge feature into main",)]
        parents = await fetch(
            conn,
            "SELECT p.identifier FROM vstore.commit_parents cp"
            " JOIN vstore.commits p ON p.pk = cp.parent_pk"
            " WHERE cp.commit_pk = %s ORDER BY cp.position",
            result.commit.pk,
        )
        assert parents == [(main_head,), (feature_head,)]
        digest = (await fetch(conn, "SELECT vstore.tree_hash('wt_1')"))[0][0]
        expected = await fetch(
            conn,
            "SELECT vstore.commit_identifier('main', %s, %s, %s, 'merge feature into main')",
            main_head,
            feature_head,
            digest,
        )
        assert result.commit.identifier == expected[0][0]
        assert (await T.log(conn, "main"))[:2] == (result.commit.identifier, main_head)
        assert await T.verify(conn) == ()
        # Merging back: main's head descends from feature's head.
        assert (await T.merge(conn, "main", "feature")).kind == "fast_forward"

    run(reference_dsn, body)


def test_merge_conflicts_change_nothing(reference_dsn: str) -> None:
    async def body(conn: Conn) -> None:
        await migrate_and_commit(conn, "main", "0001_base", [create_table("t", col("a"), col("b"))])
        await T.create_branch(conn, "x", "main")
        await T.create_branch(conn, "y", "main")
        await migrate_and_commit(conn, "x", "0002_x", [{"op": "drop_table", "table": "t"}])
        await migrate_and_commit(
            conn, "y", "0003_y", [{"op": "add_column", "table": "t", "column": col("c")}]
        )
        before = await fetch(
            conn, "SELECT head_pk, version, tree_hash FROM vstore.branches ORDER BY pk"
        )
        await raises("merge_conflict", T.merge(conn, "y", "x"))  # removed vs changed
        await T.create_branch(conn, "z", "main")
        await migrate_and_commit(
            conn, "z", "0004_z", [{"op": "add_column", "table": "t", "column": col("c", "text")}]
        )
        await raises("merge_conflict", T.merge(conn, "z", "y"))  # column c differs
        await T.create_branch(conn, "w", "main")
        await migrate_and_commit(conn, "w", "0005_w", [create_index("c", "t", "a")])
        await T.create_branch(conn, "v", "main")
        await migrate_and_commit(conn, "v", "0006_v", [create_table("c", col("a"))])
        await raises("merge_conflict", T.merge(conn, "v", "w"))  # one name, a table and an index
        await migrate_and_commit(conn, "y", "0007_y", [create_index("yi", "t", "c")])
        await T.create_branch(conn, "u", "main")
        await migrate_and_commit(
            conn, "u", "0008_u", [{"op": "add_column", "table": "t", "column": col("d")}]
        )
        assert (await T.merge(conn, "u", "y")).kind == "merge"  # both changed t, compatibly
        await T.create_branch(conn, "s", "main")
        await migrate_and_commit(
            conn, "s", "0009_s", [{"op": "drop_column", "table": "t", "column": "b"}]
        )
        await migrate_and_commit(conn, "x", "0010_x", [create_table("t", col("a"), col("b"))])
        after = await fetch(
            conn,
            "SELECT head_pk, version, tree_hash FROM vstore.branches WHERE pk <= 3 ORDER BY pk",
        )
        assert after[0] == before[0]
        assert await T.verify(conn) == ()

    run(reference_dsn, body)


def test_delete_then_create_same_name(reference_dsn: str) -> None:
    async def body(conn: Conn) -> None:
        b = await T.create_branch(conn, "b", "main")
        await T.delete_branch(conn, "b")
        assert await fetch(
            conn, "SELECT count(*) FROM pg_namespace WHERE nspname = %s", f"wt_{b.pk}"
        ) == [(0,)]
        await raises("branch_exists", T.create_branch(conn, "b", "main"))
        row = await fetch(conn, "SELECT status FROM vstore.branches WHERE pk = %s", b.pk)
        assert row == [("deleted",)]
        c = await T.create_branch(conn, "c", "main")
        assert c.pk > b.pk  # pk never reused, not even the failed attempt's
        assert (await T.resolve(conn, "branch", "b")).pk == b.pk

    run(reference_dsn, body)


# -- reads --------------------------------------------------------------------------


def test_resolve_by_every_key(reference_dsn: str) -> None:
    async def body(conn: Conn) -> None:
        branch = await T.create_branch(conn, "feature", "main")
        commit = (await T.commit(conn, "feature", "m")).commit
        migration = (await T.apply_migration(conn, "feature", "0001_a", OPS)).migration
        for kind, tid in (("branch", branch), ("commit", commit), ("migration", migration)):
            assert await T.resolve(conn, kind, tid.pk) == tid  # type: ignore[arg-type]
            assert await T.resolve(conn, kind, tid.id) == tid  # type: ignore[arg-type]
            assert await T.resolve(conn, kind, tid.identifier) == tid  # type: ignore[arg-type]
        # A branch named like a pk or a UUID is found by name from Python (typed keys).
        two = await T.create_branch(conn, "1", "main")
        assert (await T.resolve(conn, "branch", "1")) == two
        assert (await T.resolve(conn, "branch", 1)).identifier == "main"
        # From SQL without a key kind, the text decides: integer string -> pk first.
        rows = await fetch(conn, "SELECT identifier FROM vstore.resolve('branch', '1')")
        assert rows == [("main",)]
        rows = await fetch(
            conn, "SELECT identifier FROM vstore.resolve('branch', %s)", str(branch.id).upper()
        )
        assert rows == [("feature",)]
        await raises("not_found", T.resolve(conn, "commit", branch.id))
        await raises("not_found", T.resolve(conn, "branch", 10**30))

    run(reference_dsn, body)


def test_verify_reports_out_of_band_changes(reference_dsn: str) -> None:
    async def body(conn: Conn) -> None:
        await T.apply_migration(
            conn,
            "main",
            "0001_a",
            [
                create_table("t", col("a")),
                create_table("u", col("a")),
                create_index("ui", "u", "a"),
            ],
        )
        await T.create_branch(conn, "b", "main")
        assert await T.verify(conn) == ()
        await conn.execute("ALTER TABLE wt_1.t ADD COLUMN sneaky int")
        await conn.execute("DROP INDEX wt_1.ui")
        await conn.execute("CREATE TABLE wt_2.extra (x int)")
        assert await T.verify(conn) == (Drift("b", ("extra",)), Drift("main", ("t", "ui")))
        await raises("schema_drift", T.commit(conn, "main", "m"))
        await conn.execute("ALTER TABLE wt_1.t DROP COLUMN sneaky")
        await conn.execute("CREATE INDEX ui ON wt_1.u (a)")
        assert await T.verify(conn) == (Drift("b", ("extra",)),)
        await T.commit(conn, "main", "clean again")

    run(reference_dsn, body)


# -- concurrency --------------------------------------------------------------------


def test_concurrent_commits_serialise(reference_dsn: str) -> None:
    async def main() -> None:
        a = await psycopg.AsyncConnection.connect(reference_dsn)
        b = await psycopg.AsyncConnection.connect(reference_dsn)
        watch = await psycopg.AsyncConnection.connect(reference_dsn, autocommit=True)
        try:
            first = await T.commit(a, "main", "first")  # a's transaction stays open
            b_pid = b.info.backend_pid
            second_task = asyncio.create_task(T.commit(b, "main", "second"))
            for _ in range(1000):
                cur = await watch.execute(
                    "SELECT %s = ANY (pg_blocking_pids(%s))", (a.info.backend_pid, b_pid)
                )
                row = await cur.fetchone()
                if row is not None and row[0]:
                    break
                await asyncio.sleep(0.005)
            else:
                raise AssertionError("the second commit did not block on the first")
            assert not second_task.done()
            await a.commit()
            second = await second_task
            await b.commit()
            log = await T.log(watch, "main")
            assert log[:2] == (second.commit.identifier, first.commit.identifier)
            assert len(log) == 3
            assert (first.version, second.version) == ("0.0.1", "0.0.2")
        finally:
            for conn in (a, b, watch):
                await conn.close()

    asyncio.run(main())


def test_names_taken_after_a_repeatable_read_snapshot(reference_dsn: str) -> None:
    """A name taken by a transaction that committed after our snapshot: no silent duplicate."""

    async def main() -> None:
        setup = await psycopg.AsyncConnection.connect(reference_dsn, autocommit=True)
        a = await psycopg.AsyncConnection.connect(reference_dsn, autocommit=True)
        b = await psycopg.AsyncConnection.connect(reference_dsn)
        try:
            await T.create_branch(setup, "other", "main")
            await b.set_isolation_level(psycopg.IsolationLevel.REPEATABLE_READ)
            await b.execute("SELECT 1")  # b's snapshot is taken here
            await T.create_branch(a, "x", "main")
            await T.apply_migration(a, "main", "0001_a", OPS)
            await raises("branch_exists", T.create_branch(b, "x", "other"))
            await b.rollback()
            await b.execute("SELECT 1")
            await T.apply_migration(a, "main", "0002_a", [create_table("u", col("a"))])
            error = await raises(
                "serialization_failure",
                T.apply_migration(b, "other", "0002_a", [create_table("v", col("a"))]),
                "40001",
            )
            assert "0002_a" in error.message
            await b.rollback()
            ids = await fetch(setup, "SELECT identifier FROM vstore.migrations ORDER BY pk")
            assert ids == [("0001_a",), ("0002_a",)]
        finally:
            for conn in (setup, a, b):
                await conn.close()

    asyncio.run(main())


def test_merge_rebuilds_a_table_whose_columns_all_changed(reference_dsn: str) -> None:
    async def body(conn: Conn) -> None:
        await migrate_and_commit(
            conn, "main", "0001_a", [create_table("t", col("a")), insert("t", ["1"], ["2"])]
        )
        await T.create_branch(conn, "f", "main")
        await migrate_and_commit(
            conn,
            "f",
            "0002_b",
            [
                {"op": "add_column", "table": "t", "column": col("b", "text", default="d")},
                {"op": "drop_column", "table": "t", "column": "a"},
            ],
        )
        await migrate_and_commit(conn, "main", "0003_c", [create_table("other", col("o"))])
        assert (await T.merge(conn, "f", "main")).kind == "merge"
        assert await fetch(conn, "SELECT b FROM wt_1.t") == [("d",), ("d",)]
        assert await T.verify(conn) == ()

    run(reference_dsn, body)


class _AlwaysPatch(ReferenceTarget):
    """A mutant: every commit bumps the patch level."""

    name = "always_patch"
    extra_sql = (
        "CREATE OR REPLACE FUNCTION vstore.version_change(old_tree jsonb, new_tree jsonb)"
        " RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT 'patch' $$",
    )


def test_a_mutant_replaces_one_function(empty_dsn: str) -> None:
    with psycopg.connect(empty_dsn, autocommit=True) as conn:
        _AlwaysPatch().install(conn)
    names = [n for n, _ in ReferenceTarget().sql_scripts()]
    assert names == sorted(names)
    assert names[0] == "00_schema.sql"
    assert names[-1] == "90_init.sql"

    async def body(conn: Conn) -> None:
        await _AlwaysPatch().apply_migration(conn, "main", "0001_a", OPS)
        assert (await _AlwaysPatch().commit(conn, "main", "m")).version == "0.0.1"

    run(empty_dsn, body)
