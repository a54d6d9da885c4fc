"""Per-example databases: nothing leaks from one example into the next."""

from __future__ import annotations

import json
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import LiteralString

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from psycopg import sql

from modelcheck import DatabasePool, EmbeddedServer, ServerError, connect
from modelcheck._postgres.isolation import Connection, reap_dead_databases
from modelcheck._postgres.server import owner_record, scratch_name

pytestmark = pytest.mark.postgres


def _install(conn: Connection) -> None:
    conn.execute("CREATE TABLE item (pk bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, v text)")
    conn.execute("CREATE SEQUENCE counter")


@pytest.fixture(scope="module")
def pool(embedded: EmbeddedServer) -> Iterator[DatabasePool]:
    with DatabasePool(embedded, _install, ahead=2) as pool:
        yield pool


# Each pollution leaves a trace that a later example would see if databases or
# sessions were reused: (statement, commit afterwards?). An uncommitted one leaves a
# transaction open; none cleans up after itself.
POLLUTIONS: dict[str, tuple[LiteralString, bool]] = {
    "rows": ("INSERT INTO item (v) VALUES ('x')", True),
    "uncommitted_rows": ("INSERT INTO item (v) VALUES ('open')", False),
    "identity": ("SELECT nextval('item_pk_seq')", True),
    "sequence": ("SELECT setval('counter', 99)", True),
    "schema": ("CREATE SCHEMA polluted", True),
    "table": ("CREATE TABLE public.polluted (x int)", True),
    "prepared": ("PREPARE polluted AS SELECT 1", True),
    "setting": ("SET work_mem = '7MB'", True),
    "custom_setting": ("SET modelcheck.polluted = 'yes'", True),
    "temp_table": ("CREATE TEMP TABLE polluted_tmp (x int)", True),
    # try_: a second connection must not block on the first one's lock.
    "advisory_lock": ("SELECT pg_try_advisory_lock(42)", True),
}


def pollute(conn: Connection, name: str) -> None:
    statement, commit = POLLUTIONS[name]
    conn.execute(statement)
    if commit:
        conn.commit()


_ALREADY_THERE = (
    psycopg.errors.DuplicateSchema,
    psycopg.errors.DuplicateTable,
    psycopg.errors.DuplicatePreparedStatement,
)


def leaks(conn: Connection) -> list[str]:
    """Everything that would be visible on ``conn`` if a previous example leaked."""
    checks: dict[str, LiteralString] = {
        "rows": "SELECT count(*) <> 0 FROM item",
        "identity": "SELECT last_value IS NOT NULL FROM pg_sequences "
        "WHERE sequencename = 'item_pk_seq'",
        "sequence": "SELECT last_value IS NOT NULL FROM pg_sequences "
        "WHERE sequencename = 'counter'",
        "schema": "SELECT to_regnamespace('polluted') IS NOT NULL",
        "table": "SELECT to_regclass('public.polluted') IS NOT NULL",
        "prepared": "SELECT count(*) <> 0 FROM pg_prepared_statements",
        "setting": "SELECT current_setting('work_mem') = '7MB'",
        "custom_setting": "SELECT current_setting('modelcheck.polluted', true) IS NOT NULL",
        "temp_table": "SELECT count(*) <> 0 FROM pg_class WHERE relpersistence = 't'",
        "advisory_lock": "SELECT count(*) <> 0 FROM pg_locks WHERE locktype = 'advisory' "
        "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    }
    found = [name for name, query in checks.items() if conn.execute(query).fetchone() != (False,)]
    conn.rollback()
    return found


def test_the_leak_check_can_fail(pool: DatabasePool) -> None:
    """Control: on a reused database and session, the check does see every pollution."""
    with pool.database() as db:
        polluter = pool.connect(db)
        for name in POLLUTIONS:
            pollute(polluter, name)
        polluter.commit()
        assert set(leaks(polluter)) == set(POLLUTIONS) - {"uncommitted_rows"}


@settings(max_examples=25, deadline=None)
@given(
    actions=st.lists(
        st.tuples(st.sampled_from(sorted(POLLUTIONS)), st.integers(0, 2)), min_size=1, max_size=8
    ),
    close_some=st.booleans(),
)
def test_no_leak_between_examples(
    pool: DatabasePool, actions: list[tuple[str, int]], close_some: bool
) -> None:
    with pool.database() as db:
        conns = [pool.connect(db) for _ in range(3)]
        for conn in conns:  # every connection starts clean
            assert leaks(conn) == []
        for name, which in actions:
            conn = conns[which]
            try:
                pollute(conn, name)
            except _ALREADY_THERE:
                conn.rollback()  # e.g. the same schema twice: still polluted
        if close_some:
            conns[0].close()
        # The rest stay open (some inside a transaction): release must cope.
    assert all(conn.closed for conn in conns)


def test_release_closes_forgotten_connections(pool: DatabasePool) -> None:
    db = pool.checkout()
    forgotten = [pool.connect(db) for _ in range(2)]
    forgotten[0].execute("BEGIN")
    pool.release(db)
    assert all(conn.closed for conn in forgotten)


def test_untracked_connections_do_not_block_the_drop(
    pool: DatabasePool, embedded: EmbeddedServer
) -> None:
    with pool.database() as db:
        stray = psycopg.connect(db.dsn)  # not via the pool: it must be terminated
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with psycopg.connect(embedded.dsn) as admin:
                row = admin.execute(
                    "SELECT count(*) FROM pg_database WHERE datname = %s", [db.name]
                ).fetchone()
            if row == (0,):
                break
            time.sleep(0.01)
        assert row == (0,)
    finally:
        stray.close()


def test_template_refuses_connections(pool: DatabasePool, embedded: EmbeddedServer) -> None:
    with pytest.raises(psycopg.OperationalError, match="not currently accepting"):
        psycopg.connect(embedded.dsn_for(pool.template)).close()


def test_connect_applies_session_settings(pool: DatabasePool) -> None:
    with pool.database() as db:
        conn = connect(db.dsn, {"work_mem": "7MB", "application_name": "mc test"})
        with conn:
            assert conn.execute("SHOW work_mem").fetchone() == ("7MB",)
            assert conn.execute("SHOW application_name").fetchone() == ("mc test",)
            assert not conn.autocommit


def test_warm_checkout_is_fast(pool: DatabasePool) -> None:
    latencies = []
    for _ in range(10):
        time.sleep(0.05)  # let the background thread refill, as between examples
        start = time.perf_counter()
        db = pool.checkout()
        latencies.append(time.perf_counter() - start)
        pool.release(db)
    assert statistics.median(latencies) < 0.005


def test_checkout_with_no_ahead_clones_synchronously(embedded: EmbeddedServer) -> None:
    with (
        DatabasePool(embedded, _install, ahead=0) as pool,
        pool.database() as db,
        pool.connect(db) as conn,
    ):
        assert conn.execute("SELECT count(*) FROM item").fetchone() == (0,)


def test_close_drops_everything_and_stops_threads(embedded: EmbeddedServer) -> None:
    threads_before = set(threading.enumerate())
    pool = DatabasePool(embedded, _install, ahead=3).open()
    assert set(threading.enumerate()) - threads_before  # the fill and drop threads
    held = pool.checkout()
    pool.connect(held)
    with pool.database():
        pass
    pool.close()
    with psycopg.connect(embedded.dsn) as admin:
        names = {str(r[0]) for r in admin.execute("SELECT datname FROM pg_database")}
    assert held.name not in names
    assert pool.template not in names
    assert not set(threading.enumerate()) - threads_before
    with pytest.raises(ServerError, match="closed"):
        pool.checkout()
    pool.close()  # idempotent


def test_failing_installer_leaves_no_template(embedded: EmbeddedServer) -> None:
    def broken(conn: Connection) -> None:
        conn.execute("CREATE TABLE oops (")

    pool = DatabasePool(embedded, broken)
    with pytest.raises(psycopg.errors.SyntaxError):
        pool.open()
    with psycopg.connect(embedded.dsn) as admin:
        row = admin.execute(
            "SELECT count(*) FROM pg_database WHERE datname = %s", [pool.template]
        ).fetchone()
    assert row == (0,)


def test_pool_survives_terminated_backends(embedded: EmbeddedServer) -> None:
    """A fault rule may terminate every backend; the pool reconnects and still cleans up."""
    with DatabasePool(embedded, _install, ahead=1) as pool:
        with pool.database():
            pass
        time.sleep(0.05)  # let the threads use (and hold) their connections
        with psycopg.connect(embedded.dsn, autocommit=True) as killer:
            killer.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'"
            )
        for _ in range(3):
            with pool.database() as db, pool.connect(db) as conn:
                assert conn.execute("SELECT count(*) FROM item").fetchone() == (0,)
    with psycopg.connect(embedded.dsn) as admin:
        left = admin.execute(
            "SELECT count(*) FROM pg_database WHERE datname = %s", [pool.template]
        ).fetchone()
    assert left == (0,)


def test_databases_of_dead_owners_are_reaped(embedded: EmbeddedServer) -> None:
    """A run killed with SIGKILL leaves databases; the next pool drops only those."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    dead = {"host": socket.gethostname(), "pid": proc.pid, "start_time": "0"}
    cases = {
        "modelcheck_db_deadowner": dead,
        "modelcheck_db_liveowner": owner_record(),
        "modelcheck_db_nocomment": None,
    }
    with psycopg.connect(embedded.dsn, autocommit=True) as admin:
        for name, owner in cases.items():
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            if owner is not None:
                admin.execute(
                    sql.SQL("COMMENT ON DATABASE {} IS {}").format(
                        sql.Identifier(name), sql.Literal(json.dumps(owner))
                    )
                )
        try:
            assert reap_dead_databases(admin) == ["modelcheck_db_deadowner"]
            names = {str(r[0]) for r in admin.execute("SELECT datname FROM pg_database")}
            assert "modelcheck_db_deadowner" not in names
            assert {"modelcheck_db_liveowner", "modelcheck_db_nocomment"} <= names
        finally:
            for name in cases:
                admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))


def test_a_database_made_just_before_a_sigkill_is_reaped_by_its_name(
    embedded: EmbeddedServer,
) -> None:
    """CREATE DATABASE and COMMENT are two statements: killed between them, the owner
    still travels in the name, so the leftover is never orphaned for good."""
    code = (
        "import os, signal; from modelcheck._postgres.server import scratch_name; "
        "print(scratch_name('db'), flush=True); os.kill(os.getpid(), signal.SIGKILL)"
    )
    child = subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, text=True
    )
    assert child.returncode == -signal.SIGKILL
    orphan = child.stdout.strip()
    mine = scratch_name("db")  # this process is alive: never reaped
    other_host = orphan.rsplit("_", 2)[0] + "_00000000_" + orphan.rsplit("_", 1)[1]
    with psycopg.connect(embedded.dsn, autocommit=True) as admin:
        for name in (orphan, mine, other_host):
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            assert reap_dead_databases(admin) == [orphan]
            names = {str(r[0]) for r in admin.execute("SELECT datname FROM pg_database")}
            assert {mine, other_host} <= names
        finally:
            for name in (orphan, mine, other_host):
                admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
