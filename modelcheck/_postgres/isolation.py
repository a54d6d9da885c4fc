"""Per-example clean databases, cloned ahead of time from a template.

A Hypothesis example must start from a clean store, with DDL and several connections
allowed, and the reset must not cost the example more than a few ms. So the target's
schema is installed once into a template database; a background thread keeps a few
``CREATE DATABASE ... TEMPLATE`` clones ready, and released databases are dropped by
another thread. A fresh database per example is sound by construction: rows,
sequences, schemas, prepared statements, session settings, temp tables and advisory
locks all live in a database or a session, and both are new.
"""

from __future__ import annotations

import contextlib
import json
import queue
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from types import TracebackType
from typing import Any, Final, Self, TypeVar

import attrs
import psycopg
from psycopg import sql

from modelcheck._postgres.server import (
    Server,
    connect_admin,
    owner_from_name,
    owner_is_dead,
    owner_record,
    scratch_name,
)
from modelcheck.errors import ServerError

Connection = psycopg.Connection[tuple[Any, ...]]
#: Installs a target's schema into the template database, once per pool.
Installer = Callable[[Connection], None]

T = TypeVar("T")
_BACKEND_EXIT_TIMEOUT_S: Final = 10.0
_STOP: Final = object()


@attrs.frozen
class CleanDatabase:
    """A freshly cloned database, private to one example."""

    name: str
    dsn: str


def connect(
    dsn: str, settings: Mapping[str, str] | None = None, *, autocommit: bool = False
) -> Connection:
    """Open a psycopg connection with the given session settings (``SET`` semantics).

    >>> conn = connect(db.dsn, {"deadlock_timeout": "50ms"})  # doctest: +SKIP
    """
    conn = psycopg.connect(dsn, autocommit=True)
    try:
        if settings:
            calls = sql.SQL(", ").join(sql.SQL("set_config(%s, %s, false)") for _ in settings)
            params = [item for pair in settings.items() for item in pair]
            conn.execute(sql.SQL("SELECT {}").format(calls), params)
        conn.autocommit = autocommit
    except BaseException:
        conn.close()
        raise
    return conn


def _wait_no_backends(admin: Connection, dbname: str) -> None:
    """Terminate leftover backends of ``dbname`` and wait until they have exited.

    DROP DATABASE and CREATE DATABASE ... TEMPLATE refuse (or sleep in 100 ms steps)
    while a backend is still attached, even one whose client already hung up.
    """
    deadline = time.monotonic() + _BACKEND_EXIT_TIMEOUT_S
    while True:
        row = admin.execute(
            "SELECT count(*), count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            [dbname],
        ).fetchone()
        if row is None or row[0] == 0:
            return
        if time.monotonic() > deadline:
            raise ServerError(
                f"Backends of database {dbname!r} did not exit within "
                f"{_BACKEND_EXIT_TIMEOUT_S:.0f} s. To fix this, either: find what keeps "
                "them busy (pg_stat_activity), or restart the server."
            )
        time.sleep(0.001)


def _mark_owner(admin: Connection, dbname: str) -> None:
    """Record who made ``dbname``, so a later run can drop it if we die (SIGKILL)."""
    admin.execute(
        sql.SQL("COMMENT ON DATABASE {} IS {}").format(
            sql.Identifier(dbname), sql.Literal(json.dumps(owner_record()))
        )
    )


def reap_dead_databases(admin: Connection) -> list[str]:
    """Drop ``modelcheck_*`` databases whose recorded owner process is gone.

    Only databases whose name or comment carries an owner record made by modelcheck on
    this host are candidates; anything else (even with our prefix) is never touched.
    """
    rows = admin.execute(
        "SELECT datname, shobj_description(oid, 'pg_database') FROM pg_database "
        "WHERE datname LIKE 'modelcheck\\_%'"
    ).fetchall()
    reaped = []
    for name, comment in rows:
        owner: object = owner_from_name(str(name))
        try:
            owner = owner or (json.loads(comment) if comment else None)
        except ValueError:
            continue
        if not isinstance(owner, dict) or "pid" not in owner or not owner_is_dead(owner):
            continue
        _wait_no_backends(admin, str(name))
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(str(name))))
        reaped.append(str(name))
    return reaped


class _Admin:
    """An autocommit admin connection that reconnects once if a fault killed it.

    Fault rules terminate backends; the pool's own connections must survive that.
    """

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._conn: Connection | None = None

    def run(self, action: Callable[[Connection], T]) -> T:
        for attempt in range(2):
            if self._conn is None or self._conn.closed or self._conn.broken:
                self._conn = connect_admin(self._dsn)
            try:
                return action(self._conn)
            except psycopg.OperationalError:
                if attempt or not (self._conn.closed or self._conn.broken):
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class DatabasePool:
    """Clean databases cloned from a template that ``installer`` filled once.

    >>> with DatabasePool(server, installer) as pool:  # doctest: +SKIP
    ...     with pool.database() as db:
    ...         conn = pool.connect(db)
    """

    def __init__(
        self,
        server: Server,
        installer: Installer | None = None,
        *,
        ahead: int = 2,
        settings: Mapping[str, str] | None = None,
    ) -> None:
        self._server = server
        self._installer = installer
        self._ahead = max(ahead, 0)
        self._settings = dict(settings or {})
        self._template = scratch_name("tpl")
        self._ready: queue.Queue[str] = queue.Queue()
        self._to_drop: queue.Queue[object] = queue.Queue()
        self._checked_out: dict[str, list[Connection]] = {}
        # Every database this pool may have created and not yet dropped: close()
        # drops all of them, whatever state the threads were left in.
        self._made: set[str] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._admin: _Admin | None = None
        self._clone_suffix = sql.SQL("")
        self._background_error: BaseException | None = None
        self._closers: list[Callable[[], None]] = []

    # -- lifecycle

    def __enter__(self) -> Self:
        return self.open()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def template(self) -> str:
        """The template database's name."""
        return self._template

    def open(self) -> Self:
        """Create and fill the template, then start the background threads."""
        admin = self._admin = _Admin(self._server.dsn)
        try:
            admin.run(reap_dead_databases)
            admin.run(self._create_template)
            if self._installer is not None:
                with connect(self._server.dsn_for(self._template)) as conn:
                    self._installer(conn)
                    conn.commit()
            admin.run(self._seal_template)
        except BaseException:
            self._admin = None
            with contextlib.suppress(psycopg.Error):
                admin.run(self._dropper(self._template))
            admin.close()
            raise
        for target in (self._fill, self._drop):
            thread = threading.Thread(target=target, name=f"modelcheck-{target.__name__}")
            thread.daemon = True
            thread.start()
            self._threads.append(thread)
        return self

    def at_close(self, closer: Callable[[], None]) -> None:
        """Call ``closer`` first when the pool closes (what holds a checked-out database
        and a connection to it across examples: the warm backend)."""
        self._closers.append(closer)

    def close(self) -> None:
        """Stop the threads and drop every database this pool made. Idempotent."""
        closers, self._closers = self._closers, []
        for closer in reversed(closers):
            with contextlib.suppress(Exception):
                closer()
        self._stopping.set()
        self._wake.set()
        self._to_drop.put(_STOP)
        for thread in self._threads:
            thread.join()
        self._threads.clear()
        admin, self._admin = self._admin, None
        if admin is None:
            return
        try:
            with self._lock:
                checked_out = list(self._checked_out)
            for name in checked_out:
                self._close_connections(name)
            with self._lock:
                self._checked_out.clear()
                leftovers = sorted(self._made)
            for name in [*leftovers, self._template]:
                admin.run(self._dropper(name))
        finally:
            admin.close()

    # -- per example

    def checkout(self) -> CleanDatabase:
        """A clean database for one example (from the ready queue when warm)."""
        admin = self._admin
        if admin is None:
            raise ServerError("The database pool is closed; open it (or use `with`) first.")
        if self._background_error is not None:
            raise ServerError(
                "The database pool's background thread failed; see the cause."
            ) from self._background_error
        try:
            name = self._ready.get_nowait()
        except queue.Empty:
            with self._lock:
                name = admin.run(self._clone)
        with self._lock:
            self._checked_out[name] = []
        self._wake.set()
        return CleanDatabase(name, self._server.dsn_for(name))

    def connect(
        self,
        db: CleanDatabase,
        settings: Mapping[str, str] | None = None,
        *,
        autocommit: bool = False,
    ) -> Connection:
        """A tracked connection to ``db``; :meth:`release` closes it if you forgot."""
        conn = connect(db.dsn, {**self._settings, **(settings or {})}, autocommit=autocommit)
        with self._lock:
            if db.name not in self._checked_out:
                conn.close()
                raise ServerError(f"Database {db.name!r} is not checked out from this pool.")
            self._checked_out[db.name].append(conn)
        return conn

    def release(self, db: CleanDatabase) -> None:
        """Close its tracked connections and hand it to the background dropper."""
        self._close_connections(db.name)
        with self._lock:
            self._checked_out.pop(db.name, None)
        self._to_drop.put(db.name)

    @contextlib.contextmanager
    def database(self) -> Iterator[CleanDatabase]:
        """Check out a database for the duration of a ``with`` block."""
        db = self.checkout()
        try:
            yield db
        finally:
            self.release(db)

    # -- internals

    def _create_template(self, admin: Connection) -> None:
        if admin.info.server_version >= 150000:
            # FILE_COPY measured faster than the default WAL_LOG for small
            # templates with fsync off (no WAL of every copied page).
            self._clone_suffix = sql.SQL(" STRATEGY FILE_COPY")
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self._template)))
        _mark_owner(admin, self._template)

    def _seal_template(self, admin: Connection) -> None:
        _wait_no_backends(admin, self._template)
        # Nobody may connect to the template now: a connection breaks every clone.
        admin.execute(
            sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS false").format(
                sql.Identifier(self._template)
            )
        )

    def _close_connections(self, name: str) -> None:
        with self._lock:
            conns = self._checked_out.get(name, [])
            self._checked_out[name] = []
        for conn in conns:
            with contextlib.suppress(Exception):
                conn.close()

    def _clone(self, admin: Connection) -> str:
        name = scratch_name("db")
        self._made.add(name)  # before the attempt: a lost reply may still create it
        query = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
            sql.Identifier(name), sql.Identifier(self._template)
        )
        admin.execute(query + self._clone_suffix)
        _mark_owner(admin, name)  # comments are per database: clones do not inherit
        return name

    def _dropper(self, name: str) -> Callable[[Connection], None]:
        return lambda admin: self._drop_now(admin, name)

    def _drop_now(self, admin: Connection, name: str) -> None:
        with contextlib.suppress(ServerError):
            _wait_no_backends(admin, name)
        query = sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name))
        if admin.info.server_version >= 130000:
            # Belt and braces: we waited, but a stray client may have connected since.
            query += sql.SQL(" WITH (FORCE)")
        admin.execute(query)
        self._made.discard(name)

    def _fill(self) -> None:
        """Keep ``ahead`` clones ready."""
        admin = _Admin(self._server.dsn)
        try:
            while not self._stopping.is_set():
                if self._ready.qsize() < self._ahead:
                    self._ready.put(admin.run(self._clone))
                    continue
                self._wake.wait()
                self._wake.clear()
        except BaseException as exc:  # surfaced by the next checkout
            self._background_error = exc
        finally:
            admin.close()

    def _drop(self) -> None:
        """Drop released databases off the example's clock."""
        admin = _Admin(self._server.dsn)
        try:
            while True:
                item = self._to_drop.get()
                if not isinstance(item, str):
                    return
                admin.run(self._dropper(item))
        except BaseException as exc:
            self._background_error = exc
        finally:
            admin.close()


__all__ = [
    "CleanDatabase",
    "Connection",
    "DatabasePool",
    "Installer",
    "connect",
    "reap_dead_databases",
]
