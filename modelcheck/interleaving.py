"""Interleaved multi-connection rules: deterministic, shrinkable concurrency checking.

Several connections per example, transactions left open across steps, each statement
its own Hypothesis step. A statement is sent without waiting; :meth:`settle` drives
the machine's event loop and asks Postgres, like its own isolation tester, whether a
waiting session is blocked by one of ours (``pg_isolation_test_session_is_blocked``).
A blocked statement stays pending; its connection gets no new statement until a
commit or rollback elsewhere releases it. A step settles only when every pending
statement has been continuously blocked for longer than ``deadlock_timeout`` (so the
deadlock detector has run and its victim is the same on every replay); a wait that is
neither a result nor a detected block within :data:`UNDETECTABLE_WAIT_S` fails the run.

The oracle (:mod:`modelcheck._serial`) then checks that the committed database state
is the model after some serial order of the committed transactions that reproduces
every observed result.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import Any, Final

import attrs
import psycopg
from hypothesis import strategies as st
from hypothesis.stateful import initialize, precondition, rule

from modelcheck import _serial, _snapshot_reads, diff
from modelcheck._notes import note_step
from modelcheck.errors import ModelcheckError
from modelcheck.machine import DifferentialMachine, Step
from modelcheck.spec import Law, OperationError
from modelcheck.target import classify

ISOLATION_LEVELS: Final = ("read committed", "repeatable read", "serializable")
#: A pending statement must stay blocked this long before a step counts as settled:
#: longer than deadlock_timeout, so the detector has run for it.
SETTLE_BLOCKED_S: Final = 0.08
UNDETECTABLE_WAIT_S: Final = 20.0
_POLL_S: Final = 0.002


class UndetectableWait(ModelcheckError, AssertionError):
    """A statement neither finished nor showed as blocked by one of our sessions."""


@attrs.define
class Txn:
    """One transaction as observed: its statements and outcomes, in order."""

    session: int
    isolation: str | None  # None: a single autocommit statement
    ops: list[_serial.Observed] = attrs.field(factory=list)
    aborted: bool = False
    number: int = 0
    #: A ``lock_timeout`` is armed (the fault rules): a wait of this transaction ends
    #: by itself, so a step never settles with it blocked (see ``settle``).
    lock_timeout: bool = False
    #: Its snapshot, where the committed state at that moment is known (_snapshot_reads).
    view: _snapshot_reads.View = attrs.field(factory=_snapshot_reads.View)

    @property
    def checks_reads(self) -> bool:
        """Reads are checked against a serial order only where the level promises one."""
        return self.isolation in (None, "serializable")


@attrs.define
class Pending:
    task: asyncio.Task[Any]
    operation: str
    args: tuple[Any, ...]
    step: int
    blocked_since: float | None = None


@attrs.define
class Session:
    index: int
    conn: psycopg.AsyncConnection[Any]
    pid: int
    txn: Txn | None = None
    pending: Pending | None = None


class InterleavedMachine(DifferentialMachine):
    """Mix a suite's rule classes into this to run them on 2-4 interleaved connections.

    The domain rules call :meth:`run` unchanged; here it sends the statement on the
    current connection (``use_connection`` switches) inside that connection's open
    transaction, if any.
    """

    monotonic_pks = False
    sequential = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Set before the base class reads the initial state through check_state().
        self.sessions: list[Session] = []
        self.current = 0
        self.committed: list[Txn] = []
        self.timeline: list[tuple[int, int, str]] = []
        self._pending_txn: dict[int, Txn] = {}
        #: Transactions with statements that finished in this settle, by number.
        self._viewing: dict[int, tuple[Txn, Step]] = {}
        super().__init__(*args, **kwargs)
        self.oracle = _serial.Oracle(self.spec, self.model)
        try:
            self.admin = self.loop.run_until_complete(
                psycopg.AsyncConnection.connect(self.database.dsn, autocommit=True)
            )
        except BaseException:
            self._cleanup.close()  # Hypothesis calls no teardown when __init__ raises
            raise
        admin = self.admin
        self._cleanup.callback(lambda: self.loop.run_until_complete(admin.close()))
        self._txn_numbers = 0

    # -- sessions ------------------------------------------------------------------------

    @initialize(count=st.integers(2, 4))
    def open_connections(self, count: int) -> None:
        for index in range(count):
            conn = self.connect()
            self.sessions.append(Session(index, conn, conn.info.backend_pid))
        self.coverage.rules["open_connections"] += 1
        self.run_opening()

    def ready_for_opening(self) -> bool:
        return bool(self.sessions)

    def teardown(self) -> None:
        """Cancel every statement still waiting and wait for each task to end, so no
        task outlives the loop (no "Task was destroyed but it is pending")."""
        tasks = [s.pending.task for s in self.sessions if s.pending is not None]
        for session in self.sessions:
            session.pending = None
        try:
            for task in tasks:
                task.cancel()
            if tasks and not self.loop.is_closed():
                self.loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        finally:
            super().teardown()

    def _session(self) -> Session:
        return self.sessions[self.current]

    def has_idle_session(self) -> bool:
        return any(s.pending is None for s in self.sessions)

    def current_is_free(self) -> bool:
        return bool(self.sessions) and self._session().pending is None

    def current_in_transaction(self) -> bool:
        return self.current_is_free() and self._session().txn is not None

    def current_outside_transaction(self) -> bool:
        return self.current_is_free() and self._session().txn is None

    # -- rules -----------------------------------------------------------------------------

    @precondition(lambda self: self.has_idle_session())
    @rule(index=st.integers(0, 3), level=st.sampled_from((None, *ISOLATION_LEVELS)))
    def use_connection(self, index: int, level: str | None) -> None:
        """Switch the connection the next statements go to (pending ones are skipped);
        one outside a transaction begins one at ``level`` (None: stay in autocommit)."""
        free = [s.index for s in self.sessions if s.pending is None]
        self.current = free[index % len(free)]
        self.coverage.rules["use_connection"] += 1
        if level is not None and self._session().txn is None:
            self._begin(level)

    @precondition(lambda self: self.current_outside_transaction())
    @rule(level=st.sampled_from(ISOLATION_LEVELS))
    def begin(self, level: str) -> None:
        self.coverage.rules["begin"] += 1
        self._begin(level)

    def _begin(self, level: str) -> None:
        session = self._session()
        self._txn_numbers += 1
        session.txn = Txn(session.index, level, number=self._txn_numbers)
        statement = {
            "read committed": b"BEGIN ISOLATION LEVEL READ COMMITTED",
            "repeatable read": b"BEGIN ISOLATION LEVEL REPEATABLE READ",
            "serializable": b"BEGIN ISOLATION LEVEL SERIALIZABLE",
        }[level]
        self.await_(session.conn.execute(statement))
        self.count(f"begin {level}")
        self._record(session.index, f"BEGIN {level.upper()}")

    @precondition(lambda self: self.current_in_transaction())
    @rule()
    def commit_transaction(self) -> None:
        __tracebackhide__ = True  # pytest: not the user's frame
        self._end(b"COMMIT")

    @precondition(lambda self: self.current_in_transaction())
    @rule()
    def rollback_transaction(self) -> None:
        self._end(b"ROLLBACK")

    def idle_sessions(self) -> list[Session]:
        """Sessions with neither a transaction nor a waiting statement."""
        return [s for s in self.sessions if s.txn is None and s.pending is None]

    def has_two_idle_sessions(self) -> bool:
        return len(self.idle_sessions()) >= 2

    def _end(self, statement: bytes) -> None:
        __tracebackhide__ = True  # pytest: not the user's frame
        session = self._session()
        txn = session.txn
        assert txn is not None
        name = "commit_transaction" if statement == b"COMMIT" else "rollback_transaction"
        self.coverage.rules[name] += 1
        number = len(self.steps) + 1
        self.steps.append(Step(number, session.index, statement.decode().lower(), (), ""))
        outcome = "ok"
        try:
            self.await_(session.conn.execute(statement))
        except psycopg.Error as error:
            txn.aborted = True
            outcome = f"error {error.sqlstate}"
        session.txn = None
        if statement == b"ROLLBACK" or txn.aborted:
            txn.aborted = True
            self.spend(txn)
            outcome = outcome if outcome != "ok" else "rolled back"
            self.count("transaction aborted")
        else:
            self.committed.append(txn)
            self.oracle.commit(
                txn.ops, txn.checks_reads, f"t{txn.number}@c{txn.session}", txn.session
            )
            self.count("transaction committed")
        self.steps[-1].outcome = outcome
        self._record(session.index, f"{statement.decode()} -> {outcome}")
        self.settle()
        self.check_state(self.steps[-1])

    # -- the statement path the domain rules use -----------------------------------------

    def run(self, operation: str, *args: Any) -> Any:
        __tracebackhide__ = True  # pytest: not the user's frame
        row = self.spec.operation(operation)
        session = self._session()
        rule_name = self.current_rule
        if not self.supports(operation):
            self.coverage.skipped[rule_name] += 1
            return None
        if self.waits_on_a_key(row.locks(args)):
            # Two statements waiting for one row race for it when the holder updates
            # it (Postgres's tuple-lock queue does not survive the new row version), so
            # which one goes first would depend on timing: hold the second back.
            self.count("statement held back: its key has a waiter")
            return None
        self.coverage.rules[rule_name] += 1
        self.coverage.steps += 1
        self.ticked()
        if session.pending is not None:  # pragma: no cover - preconditions prevent it
            raise AssertionError("a statement was sent on a connection that is waiting")
        if session.txn is None:
            self._txn_numbers += 1
            txn = Txn(session.index, None, number=self._txn_numbers)
        else:
            txn = session.txn
        number = len(self.steps) + 1
        step = Step(number, session.index, operation, args, "sent")
        self.steps.append(step)
        note_step(step.describe())
        self.coverage.describe(step.describe())
        task = self.loop.create_task(getattr(self.target, operation)(session.conn, *args))
        session.pending = Pending(task, operation, args, number)
        self._pending_txn[session.index] = txn
        self._record(session.index, f"{operation}{_args(args)}")
        result = self.settle()
        if session.pending is not None:
            self.current = next(s.index for s in self.sessions if s.pending is None)
        self.check_state(step)
        return result

    def waits_on_a_key(self, keys: Iterable[str]) -> bool:
        """Whether a pending statement waits on one of ``keys`` (its operation's
        ``locks``): a second waiter for the same row is never sent (docs/concurrency.md)."""
        wanted = set(keys)
        for session in self.sessions:
            pending = session.pending
            if pending is not None and wanted & set(
                self.spec.operation(pending.operation).locks(pending.args)
            ):
                return True
        return False

    def settle(self) -> Any:
        """Drive the loop until every statement finished or stays blocked; check results,
        then the reads of transactions at the weaker levels against their snapshot (only
        now: until the loop ends, a statement released in it may still commit)."""
        __tracebackhide__ = True  # pytest: not the user's frame
        result = self._drive()
        self._check_snapshot_reads()
        return result

    def _check_snapshot_reads(self) -> None:
        __tracebackhide__ = True  # pytest: not the user's frame
        viewing, self._viewing = self._viewing, {}
        for txn, step in viewing.values():
            assert txn.isolation is not None
            verdict = _snapshot_reads.check_new_statements(
                self.spec, txn.view, txn.isolation, txn.ops, self.oracle.known_state()
            )
            for _ in range(verdict.checked):
                self.count("snapshot read checked")
            for _ in range(verdict.unchecked):
                self.count("snapshot read unchecked")
            if verdict.violation is not None:
                heading = f"a read differs from its {txn.isolation} snapshot"
                detail = (
                    f"t{txn.number}@c{txn.session} ({txn.isolation}): {verdict.violation}\n"
                    "The snapshot is the committed state when the transaction (READ "
                    "COMMITTED: the statement) began, with its own earlier statements."
                )
                title = "timeline (one column per connection)"
                self.raise_mismatch(step, heading, detail, title, self.render_timeline())

    def _drive(self) -> Any:
        __tracebackhide__ = True  # pytest: not the user's frame
        deadline = time.monotonic() + UNDETECTABLE_WAIT_S
        result: Any = None
        while True:
            tasks = [s.pending.task for s in self.sessions if s.pending is not None]
            if tasks:
                # Returns as soon as every statement is done, else after one poll interval.
                self.loop.run_until_complete(asyncio.wait(tasks, timeout=_POLL_S))
            waiting = [s for s in self.sessions if s.pending is not None]
            for session in waiting:
                pending = session.pending
                assert pending is not None
                if pending.task.done():
                    created = self._complete(session, pending)
                    if session.index == self.current:
                        result = created
            waiting = [s for s in self.sessions if s.pending is not None]
            if not waiting:
                return result
            now = time.monotonic()
            pids = [s.pid for s in self.sessions]
            for session in waiting:
                pending = session.pending
                assert pending is not None
                others = [p for p in pids if p != session.pid]
                if self._is_blocked(session.pid, others):
                    pending.blocked_since = pending.blocked_since or now
                else:
                    pending.blocked_since = None
            if all(
                s.pending is not None
                and s.pending.blocked_since is not None
                and now - s.pending.blocked_since > SETTLE_BLOCKED_S
                # A wait under lock_timeout always ends (55P03, or the lock): settling
                # before it did would let a starved backend's timer decide the outcome.
                and not getattr(self._pending_txn.get(s.index), "lock_timeout", False)
                for s in waiting
            ):
                for session in waiting:
                    assert session.pending is not None
                    if session.pending.step == len(self.steps):
                        self.steps[-1].outcome = "blocked"
                        self.count("statement blocked")
                        self._record(session.index, "… blocked")
                return result
            if now > deadline:
                raise UndetectableWait(
                    f"Statements on connections {[s.index for s in waiting]} neither "
                    f"finished nor showed as blocked by our sessions within "
                    f"{UNDETECTABLE_WAIT_S:.0f} s. To fix this, either: find what they wait "
                    "for (pg_locks, pg_stat_activity), or make the target's locks visible "
                    "to pg_blocking_pids (no sleeps, no external waits)."
                )

    def _is_blocked(self, pid: int, others: list[int]) -> bool:
        cursor = self.loop.run_until_complete(
            self.admin.execute(
                "SELECT pg_catalog.pg_isolation_test_session_is_blocked(%s, %s)",
                (pid, others),
                prepare=True,
            )
        )
        row = self.loop.run_until_complete(cursor.fetchone())
        return bool(row and row[0])

    def _complete(self, session: Session, pending: Pending) -> Any:
        """A statement finished: record its outcome in its transaction."""
        __tracebackhide__ = True  # pytest: not the user's frame
        session.pending = None
        txn = self._pending_txn.pop(session.index)
        step = self.steps[pending.step - 1]
        error = pending.task.exception()
        if isinstance(error, psycopg.Error):
            error = classify(self.spec, self.target, error)
        elif error is not None and not isinstance(error, OperationError):
            raise error
        if isinstance(error, OperationError):
            outcome: Any = error
            text = f"error {error.sqlstate} {error.kind}"
            if error.sqlstate in self.spec.legal_aborts:
                self.count(f"abort {error.sqlstate}")
        else:
            outcome = pending.task.result()
            text = "ok"
        step.outcome = text if step.outcome == "sent" else f"{step.outcome}, then {text}"
        self.count(f"{pending.operation}: {text}")
        self._record(session.index, f"{pending.operation} -> {text}")
        if isinstance(error, OperationError) and not self.spec.plausible(error):
            # An error inside a transaction is never placed in a serial order (the
            # transaction aborts), but no order at all can produce this one.
            self._fail_interleaved(
                step,
                f"{pending.operation} failed with SQLSTATE {error.sqlstate} ({error.kind}), "
                "which no serial order of the specification produces: a retryable class-40 "
                "error rewrapped, or an internal error",
            )
        observed = _serial.Observed(pending.operation, pending.args, outcome)
        if txn.isolation is not None:
            self._viewing[txn.number] = (txn, step)
        if txn.isolation is None:
            if error is None or error.sqlstate not in self.spec.legal_aborts:
                self.oracle.commit([observed], True, f"t{txn.number}@c{txn.session}", txn.session)
        else:
            txn.ops.append(observed)
            if error is not None:
                # Postgres aborted the whole transaction at once; like a real client, roll
                # back now rather than send statements that can only fail with 25P02.
                txn.aborted = True
                self.spend(txn)
                if session.txn is txn:
                    session.txn = None
                    self.count("transaction aborted")
                    # A killed backend took its transaction with it; nothing to roll back.
                    if not (session.conn.broken or session.conn.closed):
                        self.await_(session.conn.execute(b"ROLLBACK"))
                        self._record(session.index, "ROLLBACK (after the error)")
        if error is not None:
            return None
        return self.spec.operation(pending.operation).from_db(outcome)

    def spend(self, txn: Txn) -> None:
        """Values an aborted transaction returned are gone, yet FRESH ones never recur."""
        models = {id(m): m for m in (self.oracle.base, self.oracle.found, self.model)}
        committed = self.spec.bindings(self.oracle.found)
        for observed in txn.ops:
            if isinstance(observed.outcome, OperationError):
                continue
            row = self.spec.operation(observed.operation)
            for value in row.opaque(observed.outcome, observed.args):
                # A value some committed transaction owns is not spent: a rolled-back
                # transaction can only have seen it, not made it.
                if Law.FRESH in value.laws and committed.key_of(value.kind, value.value) is None:
                    for model in models.values():
                        self.spec.bindings(model).spend(value.kind, value.value)

    def locked_keys(self, txn: Txn) -> set[str]:
        """The keys an open transaction holds: its successful statements' ``locks``."""
        return {
            key
            for observed in txn.ops
            if not isinstance(observed.outcome, OperationError)
            for key in self.spec.operation(observed.operation).locks(observed.args)
        }

    # -- the oracle ----------------------------------------------------------------------

    def check_state(self, step: Step | None = None) -> None:
        __tracebackhide__ = True  # pytest: not the user's frame
        if not self.sessions:
            super().check_state(step)
            return
        quiescent = all(s.txn is None and s.pending is None for s in self.sessions)
        db = self.read_state(full=quiescent, conn=self.admin)
        observed = self.compared(db)

        def matches(model: Any) -> bool:
            if self.learn(self.spec.state_opaque(model, db), model):
                return False
            return bool(self.compared(self.spec.expected(model, full=quiescent)) == observed)

        verdict = self.oracle.check(matches)
        if verdict.outcome == "skipped":
            return
        if verdict.outcome == "unknown":
            self.count("oracle unknown")
            self.oracle.give_up()
            return
        if verdict.outcome == "violation":
            best = verdict.closest
            detail = whole = verdict.reason
            if best is not None:
                expected = self.compared(self.spec.expected(best, full=quiescent))
                detail += "\n" + diff.render(expected, observed)
                whole += "\n" + diff.render(expected, observed, limit=None, width=None)
            self._fail_interleaved(step, detail, whole)
        if verdict.searched:
            self.count("serial order searched")
        assert verdict.model is not None
        self.model = verdict.model
        if quiescent:
            self.oracle.settle()

    def _fail_interleaved(
        self, step: Step | None, detail: str, full_detail: str | None = None
    ) -> None:
        __tracebackhide__ = True  # pytest: not the user's frame
        heading = "no serial order explains the database"
        title = "timeline (one column per connection)"
        timeline = self.render_timeline()
        self.raise_mismatch(step, heading, detail, title, timeline, full_detail=full_detail)

    def _record(self, session: int, text: str) -> None:
        self.timeline.append((len(self.steps), session, text))

    def render_timeline(self) -> str:
        width = 34
        lanes = len(self.sessions) or 1
        header = "step | " + " | ".join(f"c{i}".ljust(width) for i in range(lanes))
        lines = [header, "-" * len(header)]
        for number, session, text in self.timeline[-60:]:
            cells = [""] * lanes
            shown = text if len(text) <= width else text[: width - 1] + "…"
            cells[session] = shown
            lines.append(f"{number:>4} | " + " | ".join(c.ljust(width) for c in cells))
        return "\n".join(lines)


def _args(args: tuple[Any, ...]) -> str:
    text = "(" + ", ".join(repr(a) for a in args) + ")"
    return text if len(text) < 40 else text[:39] + "…)"


__all__ = ["ISOLATION_LEVELS", "InterleavedMachine", "UndetectableWait"]
