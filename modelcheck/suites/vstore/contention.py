"""Contention by design: two sessions take the same two branch locks in opposite orders.

Random interleavings rarely build a lock cycle (a ``ci`` ConcurrencyMachine run saw no
40P01 at all), so a store's deadlock handling went unexercised. This scenario builds
one on purpose: session A writes branch X, session B writes Y, A writes Y (and waits
for B), B writes X. Postgres's deadlock detector must abort exactly one of them with
40P01, leaving nothing of it behind; the survivor's statement then completes and it
commits. Which one is the victim must not depend on timing: each waiter runs one
deadlock check, ``deadlock_timeout`` after its wait began, and a check delayed by a
starved backend could make A the victim in one run and B in the next. So A's
transaction waits with ``deadlock_timeout`` at 10 s (``SET LOCAL``): only B's check,
20 ms into its wait, can find the cycle, and B is the victim every time.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import precondition, rule

from modelcheck.interleaving import ISOLATION_LEVELS, InterleavedMachine
from modelcheck.suites.vstore.rules import DomainMachine

#: Writes that lock the branch they name (reference: ``SELECT ... FOR UPDATE``).
WRITES = ("commit", "apply_migration", "delete_branch")
#: The (first, second) writes of a lock cycle: each session's first write must leave
#: its branch alive, so only the closing write may be a delete.
CYCLES: tuple[tuple[str, str], ...] = tuple((a, b) for a in WRITES[:2] for b in WRITES)
#: What :meth:`ContentionRules.same_key_race_undo` races.
UNDOS: tuple[str, ...] = ("merge", "rollback_migration")


class ContentionRules(InterleavedMachine, DomainMachine):
    """Mix into an interleaved machine: a deadlock between two sessions, every run."""

    _cycles = 0

    @staticmethod
    def _waits(session: Any) -> bool:
        """Whether a session's statement is still pending (a call, so a type checker
        does not assume the last check still holds after ``run``)."""
        return session.pending is not None

    def _write_args(self, operation: str, branch: str) -> tuple[Any, ...]:
        self._cycles += 1
        if operation == "commit":
            return (branch, f"cycle {self._cycles}")
        if operation == "apply_migration":
            table = f"cycle_{self._cycles}"
            column = {"name": "v", "type": "integer", "nullable": True, "default": None}
            ops = [{"op": "create_table", "table": table, "columns": [column]}]
            return (branch, f"{8000 + self._cycles % 1000:04d}_cycle", ops)
        return (branch,)

    def _two_branches(self, data: st.DataObject, session: int) -> list[str] | None:
        """Two live branches other than main, created first (in autocommit, on the idle
        ``session``) when missing; None when the store refuses to make them."""

        def live() -> list[str]:
            branches = self.model.branches.items()
            return sorted(n for n, b in branches if b.status == "active" and n != "main")

        self.current = session
        for _ in range(2):  # bounded: a refused create must not loop forever
            if len(live()) >= 2:
                break
            self._cycles += 1
            self.run("create_branch", f"cycle-{self._cycles}", "main")
        if len(live()) < 2:
            return None
        return data.draw(st.permutations(live()), label="branches")[:2]

    @precondition(lambda self: self.has_two_idle_sessions())
    @rule(data=st.data(), level=st.sampled_from(ISOLATION_LEVELS))
    def opposite_lock_orders(self, data: st.DataObject, level: str) -> None:
        """A writes X, B writes Y, A writes Y (waits), B writes X: a lock cycle. The
        pairs of writes are visited in turn within an example."""
        first, second = self.draw_unvisited(data, CYCLES, "cycle")
        idle = self.idle_sessions()
        a, b = idle[0], idle[1]
        pair = self._two_branches(data, a.index)
        if pair is None or self._waits(a):
            return  # no two branches to fight over
        x, y = pair
        for session, branch in ((a, x), (b, y)):
            self.current = session.index
            self._begin(level)
            self.run(first, *self._write_args(first, branch))
            if session.txn is None or self._waits(session):
                return  # failed (rolled back), or waits on a third session: no cycle
        self.current = a.index
        self.await_(a.conn.execute(b"SET LOCAL deadlock_timeout = '10s'"))
        self._record(a.index, "SET LOCAL deadlock_timeout = '10s' (B must be the victim)")
        self.run(second, *self._write_args(second, y))
        if not self._waits(a):
            return  # it did not wait (the store took no lock): no cycle to close
        self.current = b.index
        self.run(second, *self._write_args(second, x))
        for session in (a, b):
            if session.txn is not None and session.pending is None:
                self.current = session.index
                self._end(b"COMMIT")

    @precondition(lambda self: self.has_two_idle_sessions())
    @rule(data=st.data(), level=st.sampled_from(ISOLATION_LEVELS))
    def same_key_race_undo(self, data: st.DataObject, level: str) -> None:
        """The writes ``same_key_race`` leaves out, raced the same way: two sessions merge
        one source into one branch, or roll back one migration, at the same time. The
        second must wait for the first and then see its effect (nothing left to merge,
        a migration no longer applied)."""
        operation = self.draw_unvisited(data, UNDOS, "undo race")
        idle = self.idle_sessions()
        a, b = idle[0], idle[1]
        pair = self._two_branches(data, a.index)
        if pair is None or self._waits(a):
            return  # no two branches to race on
        source, into = pair
        self.current = a.index
        if operation == "merge":
            self.run("commit", source, "to merge")  # something to merge, in autocommit
            args: tuple[Any, ...] = (source, into)
        else:
            branch_args = self._write_args("apply_migration", into)
            self.run("apply_migration", *branch_args)
            args = (branch_args[1],)
        if self._waits(a):
            return  # the set-up waits on a third session's lock
        self.current = a.index
        self._begin(level)
        self.run(operation, *args)
        if a.txn is None or self._waits(a):
            return  # failed (rolled back), or waits on a third session: no race
        self.current = b.index
        self.run(operation, *args)
        if a.pending is None and a.txn is not None:
            self.current = a.index
            self._end(b"COMMIT")
