"""pgGit's rules: a few branch names so creates, commits and deletes collide (one too long,
one with a space, one blank), short messages (one with a backslash)."""

from __future__ import annotations

from typing import ClassVar

from hypothesis import strategies as st
from hypothesis.stateful import rule

from modelcheck.faults import BackendFaultRules
from modelcheck.interleaving import InterleavedMachine
from modelcheck.machine import DifferentialMachine
from modelcheck.suites.pggit.spec import PGGIT, Model, PgGitSpec

NAMES = st.sampled_from(("main", "dev", "dev/x", "Dev", "", " ", "has space", "a" * 256))
MESSAGES = st.sampled_from(("m", "  padded  ", "", "C:\\temp"))
SQL = st.sampled_from(("CREATE TABLE t(a int)", "", "x"))


class PgGitRules(DifferentialMachine):
    spec: ClassVar[PgGitSpec] = PGGIT
    model: Model
    default_target: ClassVar[str] = "modelcheck.suites.pggit.target:PgGitTarget"

    def branch(self, data: st.DataObject, label: str = "branch_name") -> str:
        """An existing branch mostly, any pool name sometimes."""
        known = st.sampled_from(sorted(self.model.status))
        return str(self.input(data, label, st.one_of(known, NAMES)))

    @rule(data=st.data())
    def create_branch(self, data: st.DataObject) -> None:
        name = self.input(data, "branch_name", NAMES)
        self.run("create_branch", name, self.branch(data, "parent"))

    @rule(data=st.data(), message=MESSAGES)
    def commit(self, data: st.DataObject, message: str) -> None:
        self.run("commit", self.branch(data), message)

    @rule(data=st.data(), message=MESSAGES, sql=SQL)
    def create_commit(self, data: st.DataObject, message: str, sql: str) -> None:
        self.run(
            "create_commit", self.branch(data), self.input(data, "message", st.just(message)), sql
        )

    @rule(data=st.data())
    def soft_delete_branch(self, data: st.DataObject) -> None:
        self.run("soft_delete_branch", self.branch(data))

    @rule()
    def list_branches(self) -> None:
        self.run("list_branches")

    @rule(data=st.data())
    def checkout_branch(self, data: st.DataObject) -> None:
        self.run("checkout_branch", self.branch(data))

    @rule(v=st.tuples(*[st.integers(0, 3)] * 3), how=st.sampled_from(("major", "Minor", "bogus")))
    def increment_version(self, v: tuple[int, int, int], how: str) -> None:
        self.run("increment_version", *v, how)

    # pgGit v0.2.1 has these but they fail at run time: declared unsupported, never emulated.
    @rule(data=st.data())
    def delete_branch(self, data: st.DataObject) -> None:
        self.run("delete_branch", self.branch(data), True)

    @rule(data=st.data())
    def merge(self, data: st.DataObject) -> None:
        self.run("merge", self.branch(data), self.branch(data, "target"))

    @rule()
    def verify_consistency(self) -> None:
        self.run("verify_consistency")

    @rule()
    def begin_migration(self) -> None:
        self.run("begin_migration", "m1", "1.0.0")


class PgGitMachine(PgGitRules):
    """Branches and commits on one connection."""


class PgGitConcurrencyMachine(InterleavedMachine, PgGitRules):
    """The same rules on 2-4 interleaved connections, against the serial-order oracle."""


class PgGitFaultMachine(BackendFaultRules, PgGitRules):
    """Killed backends, cancels and lock timeouts between pgGit's operations."""

    _blockers = 0

    def block_a_statement(self) -> bool:
        """pgGit takes no lock of its own; its one wait is the unique index on branch
        names: create a branch in an open transaction, then the same name elsewhere."""
        free = [s for s in self.sessions if s.pending is None]
        if len(free) < 2:
            return False
        self._blockers += 1
        name = f"blocker{self._blockers}"
        holder, waiter = free[0], free[1]
        self.current = holder.index
        if holder.txn is None:
            self._begin("read committed")
        self.run("create_branch", name, "main")
        if self.has_waiting_statement() or holder.txn is None:
            return self.has_waiting_statement()
        self.current = waiter.index
        self.run("create_branch", name, "main")
        return self.has_waiting_statement()
