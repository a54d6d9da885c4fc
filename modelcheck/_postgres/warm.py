"""One warm backend kept across the examples of sequential machines.

A fresh database and connection per example is sound by construction but costs the
example its start: a new backend, cold catalog caches and plans (issue 17: 37-64 ms).
When a target declares ``Capabilities(transaction_safe=True)``, a sequential machine
instead runs each example inside one transaction on a backend that stays connected to
one database:

- the example starts with ``BEGIN; SAVEPOINT``; every operation runs after a
  savepoint, and one that fails (the target lets a failure abort the caller's
  transaction) is undone with ``ROLLBACK TO SAVEPOINT``, as autocommit would undo it;
- the example ends with ``ROLLBACK``, then every piece of session state a rollback does
  not undo is reset: holdable cursors, ``SET SESSION AUTHORIZATION``, session
  settings, ``PREPARE``d statements, ``LISTEN``, session advisory locks, temporary
  tables, cached sequence values, and the sequences themselves (``nextval`` is not
  transactional), which get back the values the template gave them;
- one thing no reset can undo: a custom setting an example defined
  (``set_config('app.x', ...)``) stays *defined* on the backend, so
  ``current_setting('app.x', true)`` reads ``''`` in later examples where a fresh
  backend reads NULL (Postgres lists no placeholders, so this cannot even be
  detected). ``Capabilities.transaction_safe`` excludes targets that tell the two
  apart.

What is *not* kept: nothing of an example survives its rollback and reset, which
``tests/test_warm_examples.py`` checks for rows, sequences, schemas, locks, settings,
prepared statements, advisory locks, temporary tables, listeners and cursors, on a
fingerprint of the backend and database taken before the first example.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, Final

import psycopg
from psycopg import sql
from psycopg.pq import TransactionStatus

from modelcheck._postgres.blocking import BlockingAsyncConnection
from modelcheck._postgres.isolation import CleanDatabase, DatabasePool
from modelcheck.spec import InvalidDefinition

#: The savepoint every operation of a warm example runs after.
SAVEPOINT: Final = sql.Identifier("modelcheck_step")

_SEQUENCES: Final = (
    "SELECT format('%I.%I', schemaname, sequencename)::regclass::oid, "
    "coalesce(last_value, start_value), last_value IS NOT NULL FROM pg_catalog.pg_sequences"
)
#: What a ROLLBACK leaves behind in a session, undone (DISCARD ALL minus DISCARD PLANS:
#: cached plans are what keeps the backend warm, and DDL invalidates them anyway).
_RESET: Final = (
    "ROLLBACK; CLOSE ALL; SET SESSION AUTHORIZATION DEFAULT; RESET ALL; DEALLOCATE ALL; "
    "UNLISTEN *; SELECT pg_catalog.pg_advisory_unlock_all(); DISCARD TEMP; DISCARD SEQUENCES"
)


class WarmBackend:
    """A database checked out for a whole run and one connection to it, reset between
    examples (see the module docstring). Replaced whole if its connection breaks."""

    def __init__(self, pool: DatabasePool, options: str) -> None:
        self._pool = pool
        self._options = options
        self.loop = asyncio.new_event_loop()
        self.database: CleanDatabase | None = None
        self._conn: BlockingAsyncConnection | None = None
        self._reset: sql.Composable = sql.SQL(_RESET)
        self._open = False  # an example's transaction is open
        self._poisoned = False  # something was committed: the database is not clean
        #: Backends replaced because one broke or its database was written to for good.
        self.replaced = 0

    def begin(self) -> BlockingAsyncConnection:
        """The connection, inside a fresh example transaction with its first savepoint."""
        conn = self._conn
        idle = conn is not None and conn.info.transaction_status == TransactionStatus.IDLE
        if conn is None or conn.closed or conn.broken or self._open or not idle:
            conn = self._replace()
        self._run(conn, sql.SQL("BEGIN; SAVEPOINT {}").format(SAVEPOINT))
        self._open = True
        return conn

    def end(self) -> None:
        """Roll the example back and reset the session (one round trip; a statement
        list in one simple query, each its own transaction after the ROLLBACK). A
        broken connection is replaced by the next :meth:`begin`."""
        conn, self._open = self._conn, False
        if conn is None or conn.closed:
            return
        if self._poisoned:
            self.replaced += 1
            self._discard()
            return
        try:
            self._run(conn, self._reset)
        except (psycopg.Error, OSError):
            self.replaced += 1
            self._discard()

    async def before_operation(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """Fail clearly when a statement outside an operation broke the transaction."""
        if conn is self._conn and conn.info.transaction_status == TransactionStatus.INERROR:
            raise InvalidDefinition(
                "A statement the machine ran outside `self.run` failed inside the "
                "example's transaction. To fix this, either: run operations through "
                "`self.run`, or do not declare the target `transaction_safe`."
            )

    async def after_operation(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """Undo a failed operation to its savepoint, or keep a good one and set the next."""
        if conn is not self._conn:
            return
        status = conn.info.transaction_status
        if status == TransactionStatus.INERROR:
            query = sql.SQL("ROLLBACK TO SAVEPOINT {}").format(SAVEPOINT)
        elif status == TransactionStatus.INTRANS:
            query = sql.SQL("RELEASE SAVEPOINT {0}; SAVEPOINT {0}").format(SAVEPOINT)
        else:
            self._poisoned = True  # what it committed is in this database now
            raise InvalidDefinition(
                "The target ended the example's transaction (COMMIT or ROLLBACK inside an "
                "operation), so an example cannot run in one transaction. To fix this, "
                "do not declare the target `transaction_safe` (Capabilities)."
            )
        await conn.execute(query)

    def close(self) -> None:
        """Close the connection, hand the database back and close the loop. Idempotent."""
        self._discard()
        if not self.loop.is_closed():
            self.loop.close()

    # -- internals

    def _replace(self) -> BlockingAsyncConnection:
        self._discard()
        self.database = self._pool.checkout()
        conn = self._conn = self._run_connect(self.database.dsn)
        rows = self.loop.run_until_complete(self._fetch(conn, _SEQUENCES))
        parts: list[sql.Composable] = [sql.SQL(_RESET)]
        if rows:
            oids, values, called = ([row[i] for row in rows] for i in range(3))
            parts.append(
                sql.SQL(
                    "SELECT count(pg_catalog.setval(s::regclass, v, c)) "
                    "FROM unnest({}::oid[], {}::bigint[], {}::bool[]) AS t(s, v, c)"
                ).format(sql.Literal(oids), sql.Literal(values), sql.Literal(called))
            )
        self._reset = sql.SQL("; ").join(parts)
        return conn

    def _run_connect(self, dsn: str) -> BlockingAsyncConnection:
        connecting = BlockingAsyncConnection.connect(dsn, autocommit=True, options=self._options)
        conn = self.loop.run_until_complete(connecting)
        assert isinstance(conn, BlockingAsyncConnection)
        return conn

    async def _fetch(self, conn: BlockingAsyncConnection, query: str) -> list[tuple[Any, ...]]:
        cursor = await conn.execute(query.encode())
        return await cursor.fetchall()

    def _run(self, conn: BlockingAsyncConnection, query: sql.Composable) -> None:
        text = query.as_string(conn).encode()  # several statements: the simple protocol
        self.loop.run_until_complete(conn.execute(text))

    def _discard(self) -> None:
        self._poisoned = False
        conn, self._conn = self._conn, None
        if conn is not None and not self.loop.is_closed():
            with contextlib.suppress(psycopg.Error, OSError):
                self.loop.run_until_complete(conn.close())
        database, self.database = self.database, None
        if database is not None:
            self._pool.release(database)


__all__ = ["SAVEPOINT", "WarmBackend"]
