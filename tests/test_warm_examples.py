"""Warm examples are sound: nothing one example does is visible to the next.

A ``transaction_safe`` target's sequential examples share one backend, each inside a
transaction rolled back at its end (modelcheck/_postgres/warm.py). These tests take a
fingerprint of everything a session or database could carry over (rows, sequences,
schemas, locks, settings, prepared statements, advisory locks, temporary tables,
listeners, cursors, the session user), make an example change every one of them, and
require the next example to see the fingerprint the first one saw.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any, ClassVar

import hypothesis
import psycopg
import pytest
from hypothesis import strategies as st
from hypothesis.stateful import rule

from modelcheck import DatabasePool, InvalidDefinition, MachineEnvironment, Server, run_machine
from modelcheck._postgres.warm import WarmBackend
from modelcheck.machine import SESSION_SETTINGS, installer_for, session_options
from modelcheck.spec import Capabilities
from modelcheck.suites.vstore.reference.target import ReferenceTarget
from modelcheck.suites.vstore.rules import BranchRules, CommitRules, DomainMachine

pytestmark = pytest.mark.postgres

#: One row per kind of state; every query is run in the session under test.
_FINGERPRINT = [
    # rows and schemas of the whole database (the store's tables included)
    "SELECT string_agg(n.nspname || '.' || c.relname || ':' || c.relkind::text, ',' ORDER BY 1) "
    "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') "
    "AND n.nspname NOT LIKE 'pg_temp%' AND n.nspname NOT LIKE 'pg_toast_temp%'",
    "SELECT count(*)::text || ':' || coalesce(max(pk), 0)::text FROM vstore.branches",
    "SELECT count(*)::text FROM vstore.commits",
    "SELECT string_agg(schemaname || '.' || sequencename || '=' || "
    "coalesce(last_value::text, '-'), ',' ORDER BY 1) FROM pg_sequences",
    # the session
    "SELECT string_agg(name || '=' || setting, ',' ORDER BY name) FROM pg_settings "
    "WHERE source IN ('session', 'client') OR name = 'search_path'",
    _CUSTOM := "SELECT current_setting('modelcheck.test', true)",
    "SELECT count(*)::text FROM pg_prepared_statements WHERE from_sql",
    "SELECT count(*)::text FROM pg_locks WHERE pid = pg_backend_pid() "
    "AND locktype IN ('advisory', 'relation', 'tuple', 'transactionid') "
    "AND relation IS DISTINCT FROM 'pg_locks'::regclass",
    _LISTENING := "SELECT count(*)::text FROM pg_catalog.pg_listening_channels()",
    "SELECT count(*)::text FROM pg_cursors",
    "SELECT count(*)::text FROM pg_class WHERE relpersistence = 't'",
    "SELECT session_user || '/' || current_user",
]

#: An example that changes every row of the fingerprint (and commits nothing).
_DIRTY = [
    "SELECT * FROM vstore.create_branch('warm-leak', 'main')",
    "SELECT * FROM vstore.commit('warm-leak', 'leaked')",
    "SELECT nextval(pg_get_serial_sequence('vstore.commits', 'pk'))",
    "CREATE SCHEMA warm_leak",
    "CREATE TABLE warm_leak.t (x int)",
    "SET search_path = warm_leak, public",
    "SET deadlock_timeout = '3s'",
    "SELECT set_config('modelcheck.test', 'leaked', false)",
    "PREPARE leaked AS SELECT 1",
    "SELECT pg_advisory_lock(42)",
    "LOCK TABLE vstore.branches IN SHARE MODE",
    "LISTEN leaked",
    "DECLARE leaked CURSOR WITH HOLD FOR SELECT 1",
    "CREATE TEMP TABLE leaked (x int)",
    "SET SESSION AUTHORIZATION warm_other",
]


async def _fingerprint(conn: psycopg.AsyncConnection[Any]) -> list[Any]:
    found = []
    for query in _FINGERPRINT:
        cursor = await conn.execute(query.encode())
        row = await cursor.fetchone()
        found.append(row[0] if row else None)
    return found


def _one(warm: WarmBackend, conn: psycopg.AsyncConnection[Any], query: bytes) -> Any:
    async def go() -> Any:
        cursor = await conn.execute(query)
        return await cursor.fetchone()

    return warm.loop.run_until_complete(go())


@pytest.fixture
def reference_pool(modelcheck_server: Server) -> Iterator[DatabasePool]:
    target = ReferenceTarget()

    def install(conn: psycopg.Connection[Any]) -> None:
        installer_for(target)(conn)
        # A role to switch to (SET SESSION AUTHORIZATION), cluster-wide: kept if present.
        conn.execute(
            b"DO $$ BEGIN CREATE ROLE warm_other; EXCEPTION WHEN duplicate_object THEN END $$"
        )
        conn.execute(b"GRANT USAGE ON SCHEMA vstore TO warm_other")
        conn.execute(b"GRANT SELECT ON ALL TABLES IN SCHEMA vstore TO warm_other")

    with DatabasePool(modelcheck_server, install, ahead=0, settings=SESSION_SETTINGS) as pool:
        yield pool


def test_nothing_of_an_example_reaches_the_next(reference_pool: DatabasePool) -> None:
    warm = WarmBackend(reference_pool, session_options())
    try:
        conn = warm.begin()
        before = warm.loop.run_until_complete(_fingerprint(conn))
        for statement in _DIRTY:
            warm.loop.run_until_complete(conn.execute(statement.encode()))
        dirty = warm.loop.run_until_complete(_fingerprint(conn))
        # The probe can fail: every row of the fingerprint changed inside the example,
        # but LISTEN, which takes effect only at commit (a rollback undoes it anyway).
        pairs = zip(_FINGERPRINT, before, dirty, strict=True)
        unchanged = [query for query, a, b in pairs if a == b]
        assert unchanged == [_LISTENING]
        warm.end()
        again = warm.begin()
        assert (warm.replaced, again is conn) == (0, True), "the backend is kept"
        after = warm.loop.run_until_complete(_fingerprint(again))
        # The one residue no reset undoes (documented in warm.py and the capability):
        # the custom setting stays defined, empty, where a fresh backend has none.
        custom = _FINGERPRINT.index(_CUSTOM)
        assert (before[custom], after[custom]) == (None, "")
        assert [a for i, a in enumerate(after) if i != custom] == [
            b for i, b in enumerate(before) if i != custom
        ]
        # The reset values are the session's own: the machines' settings survive it.
        assert _one(warm, again, b"SHOW deadlock_timeout") == ("20ms",)
        warm.end()
    finally:
        warm.close()
    assert warm.loop.is_closed()


def test_a_failed_operation_is_undone_to_its_savepoint(reference_pool: DatabasePool) -> None:
    warm = WarmBackend(reference_pool, session_options())
    try:
        conn = warm.begin()
        run = warm.loop.run_until_complete
        run(conn.execute(b"SELECT * FROM vstore.create_branch('kept', 'main')"))
        run(warm.after_operation(conn))
        with pytest.raises(psycopg.Error):
            run(conn.execute(b"SELECT * FROM vstore.create_branch('kept', 'main')"))
        run(warm.after_operation(conn))  # the duplicate's abort, undone
        kept = b"SELECT count(*) FROM vstore.branches WHERE identifier = 'kept'"
        assert _one(warm, conn, kept) == (1,), "the good operation before it stays"
        warm.end()
    finally:
        warm.close()


def test_a_broken_backend_is_replaced(reference_pool: DatabasePool) -> None:
    warm = WarmBackend(reference_pool, session_options())
    try:
        conn = warm.begin()
        with pytest.raises(psycopg.OperationalError):
            _one(warm, conn, b"SELECT pg_terminate_backend(pg_backend_pid())")
        warm.end()
        fresh = warm.begin()
        assert fresh is not conn
        assert _one(warm, fresh, b"SELECT count(*) FROM vstore.branches") == (1,)
        warm.end()
    finally:
        warm.close()


class _Machine(CommitRules, BranchRules):
    """Branches and commits: pks, ids, sequences and DDL of working trees."""


def _settings() -> hypothesis.settings:
    return hypothesis.settings(
        max_examples=25, stateful_step_count=15, deadline=None, database=None
    )


def test_warm_and_cold_examples_have_the_same_trail(reference_pool: DatabasePool) -> None:
    """The same seed, one run on fresh databases and one on the warm backend: every
    rule and every outcome (pks and ids included) equal, step by step."""
    trails = {}
    for warm in (False, True):
        environment = MachineEnvironment(ReferenceTarget(), reference_pool, "dev", seed=7)
        environment.warm_examples = warm
        run_machine(_Machine, environment, _settings())
        result = environment.results["_Machine"]
        assert result["outcome"] == "passed"
        trails[warm] = (result["trail"], result["steps"], result["outcomes"])
        environment.close()
    assert trails[True] == trails[False]
    assert trails[True][1] > 100


class _Committing(ReferenceTarget):
    """Ends the caller's transaction inside an operation: cannot run warm."""

    name = "reference-committing"
    capabilities: ClassVar[Capabilities] = Capabilities(transaction_safe=True)

    async def create_branch(self, conn: psycopg.AsyncConnection[Any], *args: Any) -> Any:
        result = await super().create_branch(conn, *args)
        await conn.execute(b"COMMIT")
        return result


class _Creates(DomainMachine):
    @rule(name=st.just("feat"))
    def only_create(self, name: str) -> None:
        self.run("create_branch", name, "main")


def test_a_target_that_commits_is_told_it_is_not_transaction_safe(
    reference_pool: DatabasePool,
) -> None:
    environment = MachineEnvironment(_Committing(), reference_pool, "dev", seed=1)
    settings = hypothesis.settings(
        max_examples=3,
        stateful_step_count=3,
        deadline=None,
        database=None,
        phases=[hypothesis.Phase.generate],
    )
    with pytest.raises(InvalidDefinition, match="ended the example's transaction"):
        run_machine(_Creates, environment, settings)
    environment.close()


def test_the_blocking_client_keeps_the_async_interface(reference_pool: DatabasePool) -> None:
    from modelcheck._postgres.blocking import BlockingAsyncConnection

    async def go() -> tuple[Any, ...] | None:
        with reference_pool.database() as db:
            async with await BlockingAsyncConnection.connect(db.dsn, autocommit=True) as conn:
                cursor = await conn.execute("SELECT %s::int + 1", (41,))
                return await cursor.fetchone()

    assert asyncio.run(go()) == (42,)
