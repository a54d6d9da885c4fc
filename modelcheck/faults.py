"""Fault rules any Postgres-backed system must survive, made exact by the model.

Each fault is a rule that runs between ordinary steps; after it the model says what
must hold and the usual full-state comparison checks it:

- ``kill_backend``: ``pg_terminate_backend`` on a connection inside a transaction:
  that transaction is gone (57P01 or a broken connection for a statement in flight),
  the connection is replaced, the others carry on (and a statement it blocked is
  released).
- ``cancel_blocked``: ``pg_cancel_backend`` on a waiting statement: 57014, its
  transaction aborted, nothing of it remains.
- ``begin_with_lock_timeout``: a transaction whose statements give up waiting after
  a few ms: 55P03, aborted, nothing remains.

Every fault is chosen by Hypothesis like any rule, so the same seed injects the same
fault at the same step. A suite adds the faults of its own domain (the versioned
store: out-of-band DDL, failing migrations).
"""

from __future__ import annotations

import asyncio
import time
from typing import Final

from hypothesis import strategies as st
from hypothesis.stateful import precondition, rule

from modelcheck.interleaving import (
    ISOLATION_LEVELS,
    UNDETECTABLE_WAIT_S,
    InterleavedMachine,
    Session,
)
from modelcheck.machine import Step

_BACKEND_EXIT_TIMEOUT_S: Final = 10.0


class BackendFaultRules(InterleavedMachine):
    """Mix into an interleaved machine (with a suite's rules) to inject faults any
    Postgres-backed system must survive."""

    # -- named predicates --------------------------------------------------------------

    def has_open_transaction(self) -> bool:
        return any(s.txn is not None for s in self.sessions)

    def has_waiting_statement(self) -> bool:
        return any(s.pending is not None for s in self.sessions)

    def is_quiescent(self) -> bool:
        return bool(self.sessions) and all(
            s.txn is None and s.pending is None for s in self.sessions
        )

    # -- faults --------------------------------------------------------------------------

    @precondition(lambda self: self.has_open_transaction())
    @rule(data=st.data())
    def kill_backend(self, data: st.DataObject) -> None:
        victims = [s for s in self.sessions if s.txn is not None]
        session = data.draw(st.sampled_from(victims), label="victim")
        self.coverage.rules["kill_backend"] += 1
        self._fault_step(session, "kill backend")
        self._admin_query(b"SELECT pg_terminate_backend(%s)", session.pid)
        self._wait_backend_gone(session.pid)
        self._settle_after_signal(session)  # its statement fails; others may be released
        if session.txn is not None:
            session.txn.aborted = True
            self.spend(session.txn)
            session.txn = None
        self._replace_connection(session)
        self.check_state(self.steps[-1])

    def block_a_statement(self) -> bool:
        """Leave a statement blocked by another connection's open transaction, so
        ``cancel_blocked`` has a victim on every run instead of by chance. Suites
        override it with writes that contend; True when a statement now waits."""
        return False

    @precondition(lambda self: self.has_waiting_statement() or self.current_is_free())
    @rule(data=st.data())
    def cancel_blocked(self, data: st.DataObject) -> None:
        """Cancel a waiting statement (building one first when none waits): 57014, its
        transaction aborted, nothing of it remains."""
        if not self.has_waiting_statement() and not self.block_a_statement():
            return
        waiting = [s for s in self.sessions if s.pending is not None]
        session = data.draw(st.sampled_from(waiting), label="cancelled")
        self.coverage.rules["cancel_blocked"] += 1
        self._fault_step(session, "cancel statement")
        self._admin_query(b"SELECT pg_cancel_backend(%s)", session.pid)
        self._settle_after_signal(session)
        self.check_state(self.steps[-1])

    @precondition(lambda self: self.current_outside_transaction())
    @rule(level=st.sampled_from(ISOLATION_LEVELS))
    def begin_with_lock_timeout(self, level: str) -> None:
        self.coverage.rules["begin_with_lock_timeout"] += 1
        self._begin(level)
        session = self.sessions[self.current]
        self.await_(session.conn.execute(b"SET LOCAL lock_timeout = '5ms'"))
        assert session.txn is not None
        session.txn.lock_timeout = True
        self._record(session.index, "SET LOCAL lock_timeout = 5ms")

    def reconnect_all(self) -> None:
        """After a server restart: every open transaction is gone, every connection new."""
        for session in self.sessions:
            if session.pending is not None:
                session.pending.task.cancel()
                session.pending = None
            if session.txn is not None:
                session.txn.aborted = True
                session.txn = None
            self._replace_connection(session)
        self._pending_txn.clear()
        self.await_(self.admin.close())
        self.admin = self.connect()
        self.await_(self.conn.close())
        self.conn = self.connect()
        self._fault_step(self.sessions[0], "server restarted")

    # -- helpers -------------------------------------------------------------------------

    def _settle_after_signal(self, session: Session) -> None:
        """Settle once the signalled session's statement has ended.

        A cancel or a terminate always ends the waiting statement, but a starved backend
        may take longer than the settle window to act on the signal; settling on "still
        blocked" then would record its 57014 one step later in some runs and not in
        others (found by the soak: the same seed, quiet and under a CPU hog)."""
        pending = session.pending
        if pending is not None:
            self.loop.run_until_complete(asyncio.wait([pending.task], timeout=UNDETECTABLE_WAIT_S))
        self.settle()

    def _fault_step(self, session: Session, what: str) -> None:
        number = len(self.steps) + 1
        self.steps.append(Step(number, session.index, "fault", (what,), "injected"))
        self._record(session.index, f"FAULT {what}")

    def _admin_query(self, query: bytes, pid: int) -> None:
        self.await_(self.admin.execute(query, (pid,)))

    def _wait_backend_gone(self, pid: int) -> None:
        """Poll until the backend has exited: a detectable event, not a sleep."""
        deadline = time.monotonic() + _BACKEND_EXIT_TIMEOUT_S
        while True:
            cursor = self.await_(
                self.admin.execute(b"SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,))
            )
            row = self.await_(cursor.fetchone())
            if row is not None and row[0] == 0:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"backend {pid} did not exit after pg_terminate_backend")
            self.loop.run_until_complete(self._tick())

    @staticmethod
    async def _tick() -> None:
        await asyncio.sleep(0.001)

    def _replace_connection(self, session: Session) -> None:
        self.await_(session.conn.close())
        conn = self.connect()
        session.conn = conn
        session.pid = conn.info.backend_pid
        self._record(session.index, "reconnected")
