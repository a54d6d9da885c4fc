"""Reusable domain rules: mix them into a machine to check those operations.

Each rule draws arguments (preferring names the machine already created, so the store
goes deep) and hands them to :meth:`DifferentialMachine.run`, which does the rest.
Preconditions read only the model.
"""

from __future__ import annotations

import uuid
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import Bundle, initialize, multiple, precondition, rule

from modelcheck import edges
from modelcheck.interleaving import InterleavedMachine
from modelcheck.machine import DifferentialMachine, counted_predicate
from modelcheck.suites.vstore import strategies
from modelcheck.suites.vstore.domain import validation
from modelcheck.suites.vstore.domain.model import Kind, Model
from modelcheck.suites.vstore.domain.tree import Tree
from modelcheck.suites.vstore.spec import VSTORE


class DomainMachine(DifferentialMachine):
    """Bundles shared by every domain rule: branch names, commits, migration identifiers."""

    spec = VSTORE

    def active_branches(self) -> list[str]:
        """The names of the branches not deleted, in order (what live rules aim at)."""
        return sorted(n for n, b in self.model.branches.items() if b.status == "active")

    model: Model

    branches = Bundle("branches")
    commits = Bundle("commits")
    migrations = Bundle("migrations")

    @initialize(target=branches)
    def start_on_main(self) -> str:
        return "main"

    # -- named predicates (read only the model; counted for the coverage report) ----------

    @counted_predicate
    def has_two_active_branches(self) -> bool:
        return sum(b.status == "active" for b in self.model.branches.values()) >= 2

    @counted_predicate
    def has_applied_migration(self) -> bool:
        return any(m.status == "applied" for m in self.model.migrations.values())

    def tree_of(self, branch: str) -> Tree:
        found = self.model.branches.get(branch)
        return found.tree if found is not None else Tree()

    # -- look-up keys at the edges (docs/edges.md) -----------------------------------------

    def variant(self, data: st.DataObject, key: str, group: str | None = None) -> str:
        """A variant of ``key`` (:func:`modelcheck.edges.variant_groups`): from ``group``
        when ``key`` has variants there, else from a group this example has not tried
        yet, and within a group a variant it has not tried yet (``draw_unvisited``), so
        an example's look-ups reach the rare Unicode forms, not five cases in a row.
        ``key`` itself when it has no variant."""
        groups = edges.variant_groups(key)
        if not groups:
            return key
        if group not in groups:
            ordered = [g for g in VARIANT_ORDER if g in groups]
            group = self.draw_unvisited(data, ordered, "variant group")
        return self.draw_unvisited(data, groups[group], f"{group} variant", report=False)

    def look_up(self, data: st.DataObject, key: str) -> str:
        """The key a look-up sends: ``key`` three times in four (shrinks to it), else
        :meth:`variant`. The spec compares keys byte for byte, so a variant names
        another entity or none."""
        if data.draw(st.integers(0, 3), label="exact key?") < 3:
            return key
        return self.variant(data, key)


#: The variant groups in the order :meth:`DomainMachine.variant` visits them (Unicode
#: first: a careless store most often normalises, and only precomposed names have forms).
VARIANT_ORDER: tuple[str, ...] = ("unicode", "case", "whitespace", "confusable", "edit")


def _created(result: Any, value: str | None) -> Any:
    return multiple() if result is None or value is None else value


class CreateBranchRules(DomainMachine):
    @rule(
        target=DomainMachine.branches,
        name=strategies.branch_names(),
        source=DomainMachine.branches,
        data=st.data(),
    )
    def create_branch(self, name: str, source: str, data: st.DataObject) -> Any:
        """Sometimes the new name is a look-alike of a taken one (another case, width or
        Unicode form): another name, so the create must succeed."""
        taken = sorted(self.model.branches)
        if _sometimes(data):
            name = self.variant(data, data.draw(st.sampled_from(taken), label="taken"))
        if _sometimes(data):
            source = self.look_up(data, source)
        return _created(self.run("create_branch", name, source), name)


def _sometimes(data: st.DataObject) -> bool:
    """True about one time in four; shrinks to False."""
    return data.draw(st.integers(0, 3), label="sometimes") == 3


class ReadRules(DomainMachine):
    """The reads (log, resolve, verify), for every machine that writes: a write that
    corrupts what a read returns, but not the snapshot, is caught where it happens."""

    @rule(name=st.one_of(DomainMachine.branches, strategies.branch_names()), data=st.data())
    def log(self, name: str, data: st.DataObject) -> None:
        self.run("log", self.look_up(data, name))

    @rule(data=st.data())
    def resolve(self, data: st.DataObject) -> None:
        """By pk, id or identifier; an identifier sometimes as a look-alike, a pk or id
        sometimes as text (text is always an identifier: a branch may be named '42')."""
        kind: Kind = data.draw(st.sampled_from(("branch", "commit", "migration")))
        keys: list[Any] = [uuid.UUID(int=7), "no such thing", 10**12]
        for identifier in self.model.entities(kind):
            keys += [
                identifier,
                self.model.pk_of(kind, identifier),
                self.model.id_of(kind, identifier),
            ]
        key = data.draw(st.sampled_from([k for k in keys if k is not None]))
        if isinstance(key, str):
            key = self.look_up(data, key)
        elif _sometimes(data):
            key = str(key)
        self.run("resolve", kind, key)

    @rule()
    def verify(self) -> None:
        self.run("verify")


class BranchRules(CreateBranchRules, ReadRules):
    @rule(name=st.one_of(DomainMachine.branches, strategies.branch_names()), data=st.data())
    def delete_branch(self, name: str, data: st.DataObject) -> None:
        self.run("delete_branch", self.look_up(data, name))

    @rule(name=strategies.branch_names())
    def delete_and_recreate(self, name: str) -> None:
        """Create a branch, delete it, create its name again: a deleted branch keeps its
        name (branch_exists), so one name never stands for two branches. Random steps
        reach the third create of one exact name too rarely for a short run."""
        if self.run("create_branch", name, "main") is None or not self._quiet():
            return
        if self.run("delete_branch", name) is not None and self._quiet():
            self.run("create_branch", name, "main")

    @rule(target=DomainMachine.branches, data=st.data())
    def look_alike(self, data: st.DataObject) -> Any:
        """Look-ups by the variants of a taken name (other cases, Unicode forms, width,
        confusable letters, whitespace, an edit): one operation (log, resolve, commit,
        delete or create, visited in turn within an example), then each variant of the
        name kept or skipped by a draw that shrinks to skipped, so one call tries about
        half of them and a shrunk failure keeps only the look-up that failed. The spec
        compares names byte for byte, so each variant names another branch or none.
        Non-ASCII names are preferred: only precomposed letters have every form."""
        names = sorted(self.model.branches)
        unusual = [n for n in names if not n.isascii()]
        if not unusual and data.draw(st.booleans(), label="make one"):
            name = data.draw(st.sampled_from(strategies.UNUSUAL_NAMES), label="unusual")
            if self.run("create_branch", name, "main") is not None:
                unusual = [name]
            if not self._quiet():
                return multiple()
        prefer_unusual = data.draw(st.integers(0, 3), label="pool") > 0
        pool = unusual if unusual and prefer_unusual else names
        name = data.draw(st.sampled_from(pool), label="name")
        operation = self.draw_unvisited(data, _LOOK_UPS, "look-up")
        created: list[str] = []
        for key in edges.identifier_variants(name):
            if not self._quiet():
                break  # a look-up waits on another session: the rest would queue behind it
            if not data.draw(st.booleans(), label="look up this variant"):
                continue
            if operation == "create_branch":
                if self.run("create_branch", key, "main") is not None:
                    created.append(key)
            elif operation == "resolve":
                self.run("resolve", "branch", key)
            elif operation == "commit":
                self.run("commit", key, "look-alike")
            else:
                self.run(operation, key)
        return multiple(*created)

    def _quiet(self) -> bool:
        """No statement is waiting (always so on a sequential machine)."""
        return all(s.pending is None for s in getattr(self, "sessions", ()))


#: What ``look_alike`` may do with a variant key, one per step.
_LOOK_UPS = ("log", "resolve", "commit", "delete_branch", "create_branch")


class CommitRules(DomainMachine):
    @rule(
        target=DomainMachine.commits,
        branch=st.one_of(DomainMachine.branches, strategies.branch_names()),
        message=strategies.messages(),
        data=st.data(),
    )
    def commit(self, branch: str, message: str, data: st.DataObject) -> Any:
        if _sometimes(data):  # rarely: most commits should land, so runs go deep
            branch = self.look_up(data, branch)
        result = self.run("commit", branch, message)
        return _created(result, result.identifier if result else None)

    @rule(
        target=DomainMachine.commits,
        data=st.data(),
        message=edges.texts_around(validation.MAX_MESSAGE_CHARS, "chars"),
    )
    def commit_at_the_limit(self, data: st.DataObject, message: str) -> Any:
        """A message one character under, at or over the limit (multi-byte, combining
        marks, wrapped in whitespace) on a live branch: ``commit`` aims at any name
        and most of its messages are short, so too few long ones land in a short run
        to catch a truncation or a limit counted after trimming."""
        live = self.active_branches()
        branch = data.draw(st.sampled_from(live), label="branch")
        result = self.run("commit", branch, message)
        return _created(result, result.identifier if result else None)


class MigrationRules(DomainMachine):
    @rule(
        target=DomainMachine.migrations,
        branch=DomainMachine.branches,
        identifier=strategies.migration_identifiers(),
        data=st.data(),
    )
    def apply_migration(self, branch: str, identifier: str, data: st.DataObject) -> Any:
        operations = data.draw(strategies.operations(self.tree_of(branch)), label="operations")
        return _created(self.run("apply_migration", branch, identifier, operations), identifier)

    @rule(identifier=DomainMachine.migrations, branch=DomainMachine.branches, data=st.data())
    def reapply_migration(self, identifier: str, branch: str, data: st.DataObject) -> None:
        """Apply a used identifier again: the same operations, nearly the same ones
        (reordered, repeated, another case), or new ones."""
        # Under concurrency the bundle may hold an identifier whose transaction rolled back.
        known = self.model.migrations.get(identifier)
        how = data.draw(st.sampled_from(("same", "variant", "changed")), label="how")
        if known is not None and how == "same":
            operations = known.operations
        elif known is not None and how == "variant":
            operations = data.draw(strategies.operations_variant(known.operations), label="ops")
        else:
            operations = data.draw(strategies.operations(self.tree_of(branch)), label="operations")
        self.run("apply_migration", branch, identifier, operations)

    @precondition(lambda self: self.has_applied_migration())
    @rule(
        identifier=st.one_of(DomainMachine.migrations, strategies.migration_identifiers()),
        data=st.data(),
    )
    def rollback_migration(self, identifier: str, data: st.DataObject) -> None:
        """An applied or unknown identifier, often in another case or with whitespace
        (rollback_latest is the rule that succeeds)."""
        how = data.draw(st.sampled_from(("exact", "case", "any")), label="how")
        key = identifier if how == "exact" else self.variant(data, identifier, how)
        self.run("rollback_migration", key)

    @precondition(lambda self: self.has_applied_migration())
    @rule(data=st.data(), look_alike_first=st.booleans())
    def rollback_latest(self, data: st.DataObject, look_alike_first: bool) -> None:
        """Roll back the latest applied migration of a branch (the one that can succeed),
        sometimes first by a look-alike of its identifier (another case, whitespace),
        which names no migration."""
        applied = [m for m in self.model.migrations.values() if m.status == "applied"]
        branch = data.draw(st.sampled_from(sorted({m.branch for m in applied})))
        latest = [m for m in applied if m.branch == branch][-1]
        if look_alike_first:
            group = self.draw_unvisited(data, ("case", "whitespace"), "rollback look-alike")
            key = self.variant(data, latest.key.identifier, group)
            self.run("rollback_migration", key)
        self.run("rollback_migration", latest.key.identifier)


class MergeRules(DomainMachine):
    @precondition(lambda self: self.has_two_active_branches())
    @rule(target=DomainMachine.commits, source=DomainMachine.branches, into=DomainMachine.branches)
    def merge(self, source: str, into: str) -> Any:
        result = self.run("merge", source, into)
        return _created(result, result.identifier if result else None)


class FocusedRules(DomainMachine):
    """Operations aimed at live branches with arguments that mostly succeed, so runs go
    deep (merges of merged branches, rollbacks after merges) and, on several
    connections, contend for the same branch rows."""

    _fresh_migrations = 0
    _fresh_branches = 0

    @rule(data=st.data(), message=st.sampled_from(("work", "fix: ü", " padded ", "🎉")))
    def commit_live(self, data: st.DataObject, message: str) -> None:
        branch = data.draw(st.sampled_from(self.active_branches()), label="branch")
        self.run("commit", branch, message)

    @rule(target=DomainMachine.migrations, data=st.data())
    def migrate_live(self, data: st.DataObject) -> Any:
        branch = data.draw(st.sampled_from(self.active_branches()), label="branch")
        self._fresh_migrations += 1
        identifier = f"{9000 + self._fresh_migrations % 1000:04d}_live"
        operations = data.draw(strategies.operations(self.tree_of(branch)), label="operations")
        return _created(self.run("apply_migration", branch, identifier, operations), identifier)

    @precondition(lambda self: self.has_two_active_branches())
    @rule(data=st.data())
    def delete_live(self, data: st.DataObject) -> None:
        names = [n for n in self.active_branches() if n != "main"]
        self.run("delete_branch", data.draw(st.sampled_from(names), label="branch"))

    @rule(data=st.data(), name=st.sampled_from(("feat", "Fix", "a b", "ünï")))
    def branch_live(self, data: st.DataObject, name: str) -> None:
        source = data.draw(st.sampled_from(self.active_branches()), label="source")
        self._fresh_branches += 1
        self.run("create_branch", f"{name}-{self._fresh_branches}", source)

    @precondition(lambda self: self.has_two_active_branches())
    @rule(data=st.data())
    def merge_live(self, data: st.DataObject) -> None:
        names = self.active_branches()
        source = data.draw(st.sampled_from(names), label="source")
        into = data.draw(st.sampled_from([n for n in names if n != source]), label="into")
        self.run("merge", source, into)

    # -- contention: writes that must wait for another connection's open transaction ----

    _contenders = 0

    @rule(data=st.data())
    def contend(self, data: st.DataObject) -> None:
        """From another connection, write to a branch an open transaction wrote (so the
        write waits for it), or create a branch beside it from a branch it did not lock.
        On a sequential machine: the same writes on any live branch."""
        found = self.contended(self.active_branches())
        locked, unlocked = self.active_branches(), self.active_branches()
        if found is not None:
            index, locked = found
            unlocked = [b for b in self.active_branches() if b not in locked]
            self.current = index
        branch = data.draw(st.sampled_from(locked), label="branch")
        kinds = ["commit", "commit", "delete_branch", "create_branch", "merge"]
        if unlocked:
            kinds.append("create_branch_beside")
        kind = data.draw(st.sampled_from(kinds), label="write")
        self._contenders += 1
        fresh = f"contender-{self._contenders}"
        if kind == "commit":
            self.run("commit", branch, "contend")
        elif kind == "delete_branch":
            self.run("delete_branch", branch)
        elif kind == "create_branch":
            self.run("create_branch", fresh, branch)
        elif kind == "create_branch_beside":
            self.run("create_branch", fresh, data.draw(st.sampled_from(unlocked), label="from"))
        else:
            source = data.draw(st.sampled_from(self.active_branches()), label="source")
            self.run("merge", source, branch)


#: The operations :meth:`ScenarioRules.apply_and_undo` applies to a fresh fixture
#: table ``t`` (columns ``c integer DEFAULT 7``, ``d text``; index ``t_idx`` on
#: ``(d, c)``) and then rolls back: every kind of inverse docs/domain.md lists.
UNDO_KINDS: tuple[str, ...] = (
    "drop_column",
    "drop_table",
    "drop_index",
    "rename_column",
    "alter_column_type",
    "add_column",
    "create_index",
    "create_table",
    "insert_rows",
)


def undo_operation(kind: str, table: str, index: str) -> dict[str, Any]:
    """The one operation of kind ``kind`` on the fixture ``table`` and its ``index``."""
    operations: dict[str, dict[str, Any]] = {
        "drop_column": {"op": "drop_column", "table": table, "column": "c"},
        "drop_table": {"op": "drop_table", "table": table},
        "drop_index": {"op": "drop_index", "index": index},
        "rename_column": {"op": "rename_column", "table": table, "column": "d", "new_name": "D e"},
        "alter_column_type": {
            "op": "alter_column_type",
            "table": table,
            "column": "d",
            "type": "character varying(5)",
        },
        "add_column": {
            "op": "add_column",
            "table": table,
            "column": {"name": "e", "type": "integer", "nullable": False, "default": "1"},
        },
        "create_index": {
            "op": "create_index",
            "index": f"{index}2",
            "table": table,
            "columns": ["c"],
            "unique": True,
        },
        "create_table": {
            "op": "create_table",
            "table": f"{table}_2",
            "columns": [{"name": "x", "type": "bigint", "nullable": True, "default": None}],
        },
        "insert_rows": {"op": "insert_rows", "table": table, "rows": [["1", "a"], [None, None]]},
    }
    return operations[kind]


#: What :meth:`ScenarioRules.remove_and_merge` removes on the side branch.
REMOVALS: tuple[str, ...] = ("drop_index", "drop_table", "drop_column")


class ScenarioRules(FocusedRules):
    """Short multi-step scenarios that random single steps reach too rarely: every undo
    path (apply one operation, roll it back; delete a branch that has tables; remove an
    object on a branch and merge it back); change one column's type on two diverged
    branches."""

    def _identifier(self, word: str) -> str:
        self._fresh_migrations += 1
        return f"{9000 + self._fresh_migrations % 1000:04d}_{word}"

    def _fixture(self, branch: str) -> tuple[str, str] | None:
        """A fresh table with a default, a nullable column, a row and an index whose
        columns are not in name order, on ``branch``; its (table, index) or None."""
        table, index, operations = self._fixture_operations()
        applied = self.run("apply_migration", branch, self._identifier("fixture"), operations)
        return None if applied is None else (table, index)

    def _fixture_operations(self) -> tuple[str, str, list[dict[str, Any]]]:
        """A fresh fixture's table, index and the operations that create them."""
        self._fresh_migrations += 1
        table = f"scenario_{self._fresh_migrations}"
        index = f"{table}_idx"
        columns = [
            {"name": "c", "type": "integer", "nullable": True, "default": "7"},
            {"name": "d", "type": "text", "nullable": True, "default": None},
        ]
        operations: list[dict[str, Any]] = [
            {"op": "create_table", "table": table, "columns": columns},
            {"op": "insert_rows", "table": table, "rows": [["1", "one"]]},
            {
                "op": "create_index",
                "index": index,
                "table": table,
                "columns": ["d", "c"],
                "unique": False,
            },
        ]
        return table, index, operations

    @rule(data=st.data())
    def reapply_nearly_same(self, data: st.DataObject) -> None:
        """Apply a fresh migration, then its identifier again with nearly the same
        operations (reordered, repeated, reversed columns, another case): the checksum
        covers the exact text, so checksum_mismatch unless the text is the same."""
        branch = data.draw(st.sampled_from(self.active_branches()), label="branch")
        identifier = self._identifier("again")
        _, _, operations = self._fixture_operations()
        if self.run("apply_migration", branch, identifier, operations) is None:
            return
        variant = data.draw(strategies.operations_variant(operations), label="variant")
        again = data.draw(st.sampled_from(self.active_branches()), label="again on")
        self.run("apply_migration", again, identifier, variant)

    @rule(target=DomainMachine.migrations, data=st.data(), same=st.booleans())
    def rollback_and_reapply(self, data: st.DataObject, same: bool) -> Any:
        """Apply a fresh migration, roll it back, apply its identifier again with the
        same operations (migration_exists) or others (checksum_mismatch): the record of
        a rolled-back migration stays, so an identifier is never applied twice. The
        identifier joins the bundle, for ``reapply_migration`` to try once more."""
        branch = data.draw(st.sampled_from(self.active_branches()), label="branch")
        identifier = self._identifier("redo")
        _, _, operations = self._fixture_operations()
        if self.run("apply_migration", branch, identifier, operations) is None:
            return multiple()
        if self.run("rollback_migration", identifier) is not None:
            again = operations if same else self._fixture_operations()[2]
            self.run("apply_migration", branch, identifier, again)
        return identifier

    @rule(data=st.data())
    def apply_and_undo(self, data: st.DataObject) -> None:
        """Apply one operation to a fresh fixture, then roll it back: the tree is the
        fixture again (rows stay as the inverse left them). The kinds are visited in
        turn within an example."""
        kind = self.draw_unvisited(data, UNDO_KINDS, "undo kind")
        branch = data.draw(st.sampled_from(self.active_branches()), label="branch")
        fixture = self._fixture(branch)
        if fixture is None:
            return
        identifier = self._identifier("undo")
        if self.run("apply_migration", branch, identifier, [undo_operation(kind, *fixture)]):
            self.run("rollback_migration", identifier)

    @rule(data=st.data())
    def delete_with_tree(self, data: st.DataObject) -> None:
        """Delete a fresh branch whose tree has a table and an index: the tree goes."""
        source = data.draw(st.sampled_from(self.active_branches()), label="source")
        self._fresh_branches += 1
        name = f"doomed-{self._fresh_branches}"
        if self.run("create_branch", name, source) is None:
            return
        if self._fixture(name) is not None:
            self.run("delete_branch", name)

    @rule(data=st.data(), diverge=st.booleans())
    def remove_and_merge(self, data: st.DataObject, diverge: bool) -> None:
        """On a new branch, remove an object a committed fixture has, commit, merge the
        branch back (a fast-forward, or three-way when the target moved on too)."""
        removed = self.draw_unvisited(data, REMOVALS, "removed")
        branch = data.draw(st.sampled_from(self.active_branches()), label="branch")
        fixture = self._fixture(branch)
        if fixture is None or self.run("commit", branch, "fixture") is None:
            return
        self._fresh_branches += 1
        other = f"remover-{self._fresh_branches}"
        if self.run("create_branch", other, branch) is None:
            return
        self.run(
            "apply_migration",
            other,
            self._identifier("remove"),
            [undo_operation(removed, *fixture)],
        )
        self.run("commit", other, "remove")
        if diverge:
            extra = undo_operation("create_table", *fixture)
            self.run("apply_migration", branch, self._identifier("extra"), [extra])
            self.run("commit", branch, "extra")
        self.run("merge", other, branch)

    def _live_column(self, data: st.DataObject, with_default: bool) -> tuple[str, str, str]:
        """A (branch, table, column) drawn from the model, or a fresh one made first."""
        candidates = [
            (branch, table.name, column.name)
            for branch in self.active_branches()
            for table in self.model.branches[branch].tree.tables.values()
            for column in table.columns
            if (column.default is not None) == with_default
        ]
        if candidates:
            return data.draw(st.sampled_from(candidates), label="column")
        branch = data.draw(st.sampled_from(self.active_branches()), label="branch")
        self._fresh_migrations += 1
        table = f"scenario_{self._fresh_migrations}"
        spec = {
            "name": "c",
            "type": "integer",
            "nullable": True,
            "default": "7" if with_default else None,
        }
        self.run(
            "apply_migration",
            branch,
            f"{9000 + self._fresh_migrations % 1000:04d}_scenario",
            [{"op": "create_table", "table": table, "columns": [spec]}],
        )
        return branch, table, "c"

    @rule(data=st.data())
    def drop_and_undo(self, data: st.DataObject) -> None:
        """Drop a column with a default, then roll that migration back: the default returns."""
        branch, table, column = self._live_column(data, with_default=True)
        self._fresh_migrations += 1
        identifier = f"{9000 + self._fresh_migrations % 1000:04d}_drop"
        operation = {"op": "drop_column", "table": table, "column": column}
        if self.run("apply_migration", branch, identifier, [operation]) is not None:
            self.run("rollback_migration", identifier)

    @rule(data=st.data(), types=st.sampled_from((("bigint", "text"), ("text", "bigint"))))
    def diverge_types_and_merge(self, data: st.DataObject, types: tuple[str, str]) -> None:
        """Change one column's type differently on two branches, commit both, merge."""
        branch, table, column = self._live_column(data, with_default=False)
        self.run("commit", branch, "base")
        self._fresh_branches += 1
        other = f"diverged-{self._fresh_branches}"
        if self.run("create_branch", other, branch) is None:
            return
        for name, new_type in ((branch, types[0]), (other, types[1])):
            self._fresh_migrations += 1
            operation = {
                "op": "alter_column_type",
                "table": table,
                "column": column,
                "type": new_type,
            }
            self.run(
                "apply_migration",
                name,
                f"{9000 + self._fresh_migrations % 1000:04d}_type",
                [operation],
            )
            self.run("commit", name, "retype")
        self.run("merge", other, branch)


#: The isolation levels a scenario opens its transaction at.
LEVELS: tuple[str, ...] = ("read committed", "repeatable read", "serializable")
#: What :meth:`StaleSnapshotRules.stale_snapshot_write` writes from its stale snapshot.
STALE_WRITES: tuple[str, ...] = ("commit", "merge", "delete_branch", "create_branch")
#: What :meth:`StaleSnapshotRules.same_key_race` races on one key.
RACES: tuple[str, ...] = (
    "delete_branch",
    "create_branch",
    "commit",
    "apply_migration",
    "rollback_migration",
    "migrate_branch",
)
#: What :meth:`StaleSnapshotRules.write_then_roll_back` writes and rolls back.
SPENT_WRITES: tuple[str, ...] = ("create_branch", "commit", "apply_migration")
#: What :meth:`StaleSnapshotRules.read_own_writes` writes, and how its transaction ends.
OWN_WRITES: tuple[tuple[str, bytes], ...] = (
    ("commit", b"COMMIT"),
    ("create_branch", b"COMMIT"),
    ("commit", b"ROLLBACK"),
    ("create_branch", b"ROLLBACK"),
)


class StaleSnapshotRules(InterleavedMachine, DomainMachine):
    """Mix into an interleaved machine: a write from a REPEATABLE READ snapshot that a
    concurrent commit made stale; the same write on the same key from two connections."""

    _races = 0

    @precondition(lambda self: self.has_two_idle_sessions())
    @rule(data=st.data())
    def stale_snapshot_write(self, data: st.DataObject) -> None:
        """A REPEATABLE READ transaction reads a branch, another connection commits to it,
        then the first writes to it: Postgres must refuse with a retryable 40001."""
        operation = self.draw_unvisited(data, STALE_WRITES, "stale write")
        idle = self.idle_sessions()
        first, second = idle[0], idle[1]
        active = self.active_branches()
        branch = data.draw(st.sampled_from(active), label="branch")
        self.current = first.index
        self._begin("repeatable read")
        self.run("log", branch)  # takes the transaction's snapshot
        self.current = second.index
        self.run("commit", branch, "meanwhile")
        self.current = first.index
        if first.pending is not None or first.txn is None:
            return  # the read itself failed and rolled back; nothing stale to write
        others = [n for n in active if n != branch]
        if operation == "merge" and others:
            self.run("merge", data.draw(st.sampled_from(others), label="source"), branch)
        elif operation == "delete_branch" and branch != "main":
            self.run("delete_branch", branch)
        elif operation == "create_branch":
            self.run("create_branch", f"stale-{len(self.steps)}", branch)
        else:
            self.run("commit", branch, "stale")
        if first.txn is not None and first.pending is None:
            self.current = first.index
            self._end(b"COMMIT")

    @precondition(lambda self: self.has_two_idle_sessions())
    @rule(data=st.data(), level=st.sampled_from(LEVELS))
    def same_key_race(self, data: st.DataObject, level: str) -> None:
        """Two connections run the same write on the same key at once: the second
        must wait for the first's transaction, then see its effect (a second delete
        fails, a second create of one name fails, a second commit builds on the
        first, a reused migration identifier is refused, a second rollback of one
        migration is migration_not_applied, a second migration of one branch sees
        the first's tree). The operations are visited in turn within an example."""
        self._race(data, self.draw_unvisited(data, RACES, "race"), level)

    @precondition(lambda self: self.has_two_idle_sessions())
    @rule(data=st.data(), level=st.sampled_from(("read committed", "repeatable read")))
    def commit_race(self, data: st.DataObject, level: str) -> None:
        """Two commits on one branch at once, in a rule of their own: the commonest
        write, and the one whose lost update forks history (both commits on the old
        head), so a short run races it several times, not once in six races."""
        self._race(data, "commit", level)

    @precondition(lambda self: self.has_two_idle_sessions())
    @rule(data=st.data(), level=st.sampled_from(LEVELS))
    def write_then_roll_back(self, data: st.DataObject, level: str) -> None:
        """A write inside a transaction that rolls back, then the same write in
        autocommit: the pk and id the rolled-back write returned are spent, so the
        second must get others (a key handed out as max + 1 comes back; the oracle
        remembers every value a rolled-back transaction returned)."""
        operation = self.draw_unvisited(data, SPENT_WRITES, "spent write")
        idle = self.idle_sessions()
        session = idle[0]
        live = self.active_branches()
        branch = data.draw(st.sampled_from(live), label="branch")
        self.current = session.index
        for attempt in ("spent", "fresh"):
            self._races += 1
            args = {
                "create_branch": (f"{attempt}-{self._races}", branch),
                "commit": (branch, attempt),
                "apply_migration": (
                    branch,
                    f"{7000 + self._races % 1000:04d}_{attempt}",
                    self._race_table(),
                ),
            }[operation]
            if attempt == "spent":
                self._begin(level)
                self.run(operation, *args)
                if session.pending is not None or session.txn is None:
                    return  # it waits on another session, or failed: nothing spent
                self._end(b"ROLLBACK")
            else:
                self.run(operation, *args)

    @precondition(lambda self: self.has_two_idle_sessions())
    @rule(data=st.data(), level=st.sampled_from(LEVELS))
    def read_own_writes(self, data: st.DataObject, level: str) -> None:
        """A write inside a transaction, then a read of what it wrote in the same
        transaction (the log of the branch committed to, the new branch by name), then
        commit or roll back. Every level promises a transaction its own writes; a read
        served from elsewhere (a replica, a dblink) misses them. Random steps rarely
        read, in one transaction, the key that transaction just wrote."""
        operation, end = self.draw_unvisited(data, OWN_WRITES, "own write")
        session = self.idle_sessions()[0]
        live = self.active_branches()
        branch = data.draw(st.sampled_from(live), label="branch")
        self.current = session.index
        self._begin(level)
        self._races += 1
        if operation == "create_branch":
            name = f"own-{self._races}"
            self.run("create_branch", name, branch)
            reads = [("log", (name,)), ("resolve", ("branch", name))]
        else:
            self.run("commit", branch, "own write")
            reads = [("log", (branch,))]
        for read, args in reads:
            if session.pending is not None or session.txn is None:
                return  # it waits on another session, or failed and rolled back
            self.run(read, *args)
        if session.pending is None and session.txn is not None:
            self.current = session.index
            self._end(end)

    def _race(self, data: st.DataObject, operation: str, level: str) -> None:
        """The race of ``same_key_race``: ``operation`` on one key from two sessions."""
        idle = self.idle_sessions()
        first, second = idle[0], idle[1]
        live = self.active_branches()
        self._races += 1
        name = f"race-{self._races}"
        if operation == "delete_branch" and not [n for n in live if n != "main"]:
            self.run("create_branch", name, "main")
            live = self.active_branches()
        branch = data.draw(
            st.sampled_from([n for n in live if n != "main"] or live), label="branch"
        )
        identifier = f"{7000 + self._races % 1000:04d}_race"
        table = [{"name": "v", "type": "integer", "nullable": True, "default": None}]
        args = {
            "delete_branch": (branch,),
            "create_branch": (name, branch),
            "commit": (branch, "race"),
            "apply_migration": (
                branch,
                identifier,
                [
                    {
                        "op": "create_table",
                        "table": f"race_{self._races}",
                        "columns": table,
                    }
                ],
            ),
            "rollback_migration": (identifier,),
            "migrate_branch": (),
        }[operation]
        self.current = first.index
        calls = [(operation, args), (operation, args)]
        if operation == "rollback_migration":
            # The migration both roll back, applied and committed first (autocommit).
            created = self.run("apply_migration", branch, identifier, self._race_table())
            if created is None or first.pending is not None:
                return
        elif operation == "migrate_branch":
            calls = [
                ("apply_migration", (branch, identifier, self._race_table())),
                ("apply_migration", (branch, f"{identifier}_b", self._race_table("_b"))),
            ]
        self._begin(level)
        self.run(calls[0][0], *calls[0][1])
        if first.txn is None:
            return  # the first write failed and rolled back: no race to run
        self.current = second.index
        self.run(calls[1][0], *calls[1][1])
        if first.pending is None and first.txn is not None:
            self.current = first.index
            self._end(b"COMMIT")

    def _race_table(self, suffix: str = "") -> list[dict[str, Any]]:
        """A migration creating this race's own table (suffix: a second one)."""
        column = {"name": "v", "type": "integer", "nullable": True, "default": None}
        return [{"op": "create_table", "table": f"race_{self._races}{suffix}", "columns": [column]}]
