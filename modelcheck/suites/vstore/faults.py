"""Faults of the versioned store's own domain, on top of the engine's backend faults.

- ``out_of_band_ddl``: someone alters a branch schema behind the store's back (every
  kind of object the store tracks: tables, columns, indexes, defaults, NOT NULL,
  types): ``verify()`` must name exactly that branch and object; a commit there,
  sent at once, fails with ``schema_drift``.
- ``failing_migration``: a migration whose k-th operation really fails in Postgres:
  no partial DDL, no record, version unchanged.

Server restarts and connection exhaustion need a cluster of their own;
``tests/test_fault_clusters.py`` covers them.
"""

from __future__ import annotations

from typing import Any

import attrs
from hypothesis import strategies as st
from hypothesis.stateful import precondition, rule
from psycopg import sql

from modelcheck.faults import BackendFaultRules
from modelcheck.suites.vstore.domain import ddl, types
from modelcheck.suites.vstore.domain.tree import Table, Tree
from modelcheck.suites.vstore.rules import StaleSnapshotRules


class FaultRules(BackendFaultRules, StaleSnapshotRules):
    """Mix into an interleaved machine (with domain rules) to inject faults."""

    _oob_counter = 0
    _failing_counter = 0

    @precondition(lambda self: self.is_quiescent())
    @rule(data=st.data())
    def out_of_band_ddl(self, data: st.DataObject) -> None:
        """ALTER a branch's working tree directly, as a careless colleague would: a
        table, a column, an index, a dropped column, a dropped default or NOT NULL, a
        column turned into text. Then commit on that branch at once: the store must
        refuse the drifted tree (schema_drift), which leaves the drift for later steps
        to see. (Committing only half the time left a store that records first and
        checks later alive in two of three short runs.)"""
        active = self.active_branches()
        name = data.draw(st.sampled_from(active), label="branch")
        tree = self.model.branches[name].tree
        choices = out_of_band_choices(tree)
        kind = data.draw(st.sampled_from(sorted(choices)), label="kind")
        table, column = data.draw(st.sampled_from(choices[kind]), label="object")
        self.coverage.rules["out_of_band_ddl"] += 1
        self.alter_behind_the_store(name, kind, table, column)
        if self.is_quiescent():
            self.run("commit", name, "after the drift")

    def alter_behind_the_store(
        self, name: str, kind: str, table: str | None, column: str | None
    ) -> None:
        """Run one ``kind`` of DDL in branch ``name``'s schema directly (the statement
        the store itself would send for it, where it has one); the model's live tree
        changes, its recorded tree does not."""
        branch = self.model.branches[name]
        self._oob_counter += 1
        schema = f"wt_{self.model.pk_of('branch', name)}"
        statement, changed = out_of_band_statement(
            branch.tree, schema, kind, table, column, f"oob_{self._oob_counter}"
        )
        self._fault_step(self.sessions[0], f"out-of-band DDL on {name!r}: {kind}")
        self.await_(self.admin.execute(statement))
        branch.tree = changed
        self.oracle.base = self.oracle.found = self.model
        self.check_state(self.steps[-1])

    @precondition(lambda self: self.current_is_free())
    @rule(data=st.data(), k=st.integers(1, 4))
    def failing_migration(self, data: st.DataObject, k: int) -> None:
        """k-1 operations that work, then one that really fails in Postgres."""
        active = self.active_branches()
        name = data.draw(st.sampled_from(active), label="branch")
        self._failing_counter += 1
        number = self._failing_counter
        operations: list[dict[str, Any]] = []
        for i in range(1, k):
            operations.append(
                {
                    "op": "create_table",
                    "table": f"ok_{number}_{i}",
                    "columns": [{"name": "v", "type": "text", "nullable": True, "default": None}],
                }
            )
        table = f"ok_{number}_1" if k > 1 else None
        failing = data.draw(st.sampled_from(("cast", "missing", "duplicate")), label="how")
        if failing == "cast" and table is not None:
            operations.append({"op": "insert_rows", "table": table, "rows": [["not a number"]]})
            operations.append(
                {"op": "alter_column_type", "table": table, "column": "v", "type": "integer"}
            )
        elif failing == "duplicate" and table is not None:
            operations.append(
                {
                    "op": "add_column",
                    "table": table,
                    "column": {"name": "v", "type": "text", "nullable": True, "default": None},
                }
            )
        else:
            operations.append({"op": "drop_table", "table": f"missing_{number}"})
        self.run("apply_migration", name, f"{8000 + number % 1000:04d}_failing", operations)

    def block_a_statement(self) -> bool:
        """A commit to a live branch inside a transaction on one connection, then a
        commit to the same branch from another: the second waits for the first's lock."""
        free = [s for s in self.sessions if s.pending is None]
        live = self.active_branches()
        if len(free) < 2 or not live:
            return False
        holder, waiter = free[0], free[1]
        branch = live[0]
        self.current = holder.index
        if holder.txn is None:
            self._begin("read committed")
        self.run("commit", branch, "hold")
        if self.has_waiting_statement():
            return True  # the holder itself waits: another transaction had the branch
        if holder.txn is None:
            return False  # its commit failed and rolled back: nothing is locked
        self.current = waiter.index
        self.run("commit", branch, "wait")
        return self.has_waiting_statement()

    # -- model helpers ---------------------------------------------------------------------

    def live_tree(self, branch: str) -> Tree:
        return self.model.branches[branch].tree


def out_of_band_choices(tree: Tree) -> dict[str, list[tuple[str | None, str | None]]]:
    """The kinds of out-of-band DDL ``tree`` allows, each with its (table, column)
    candidates in a fixed order: every kind Postgres runs without error here."""
    tables = sorted(tree.tables.values(), key=lambda t: t.name.encode())
    columns = [(t.name, c) for t in tables for c in t.columns]
    text = types.parse_type("text")
    choices: dict[str, list[tuple[str | None, str | None]]] = {
        "create_table": [(None, None)],
        "add_column": [(t.name, None) for t in tables],
        "create_index": [(t, c.name) for t, c in columns],
        "drop_column": [(t, c.name) for t, c in columns],
        "drop_default": [(t, c.name) for t, c in columns if c.default is not None],
        "drop_not_null": [(t, c.name) for t, c in columns if not c.nullable],
        "type_to_text": [
            (t, c.name)
            for t, c in columns
            if c.default is None
            and c.type != "text"
            and types.cast_exists(types.parse_type(c.type), text)
        ],
    }
    return {kind: found for kind, found in choices.items() if found}


def out_of_band_statement(
    tree: Tree, schema: str, kind: str, table: str | None, column: str | None, fresh: str
) -> tuple[sql.Composed, Tree]:
    """The statement for one kind of out-of-band DDL and the tree it leaves; ``fresh``
    names what it creates (a table, column or index)."""
    relation = sql.Identifier(schema, table or fresh)
    target = sql.Identifier(column or fresh)
    new = sql.Identifier(fresh)
    plain: dict[str, Any] = {"type": "integer", "nullable": True, "default": None}
    statement: sql.Composed
    if kind == "drop_default":
        statement = sql.SQL("ALTER TABLE {} ALTER COLUMN {} DROP DEFAULT").format(relation, target)
        return statement, _with_column(tree, table, column, default=None, default_value=None)
    if kind == "drop_not_null":
        statement = sql.SQL("ALTER TABLE {} ALTER COLUMN {} DROP NOT NULL").format(relation, target)
        return statement, _with_column(tree, table, column, nullable=True)
    op: dict[str, Any]
    if kind == "create_table":
        op = {"op": kind, "table": fresh, "columns": [{"name": "x", **plain}]}
        statement = sql.SQL("CREATE TABLE {} (x integer)").format(relation)
    elif kind == "add_column":
        op = {"op": kind, "table": table, "column": {"name": fresh, **plain}}
        statement = sql.SQL("ALTER TABLE {} ADD COLUMN {} integer").format(relation, new)
    elif kind == "create_index":
        op = {"op": kind, "index": fresh, "table": table, "columns": [column], "unique": False}
        statement = sql.SQL("CREATE INDEX {} ON {} ({})").format(new, relation, target)
    elif kind == "drop_column":
        op = {"op": kind, "table": table, "column": column}
        statement = sql.SQL("ALTER TABLE {} DROP COLUMN {}").format(relation, target)
    elif kind == "type_to_text":
        op = {"op": "alter_column_type", "table": table, "column": column, "type": "text"}
        statement = sql.SQL("ALTER TABLE {} ALTER COLUMN {} TYPE text USING {}::text").format(
            relation, target, target
        )
    else:
        raise ValueError(f"no out-of-band DDL of kind {kind!r}")
    return statement, ddl.APPLY[op["op"]](tree, op)


def _with_column(tree: Tree, table: str | None, column: str | None, **changes: Any) -> Tree:
    """``tree`` with one column of ``table`` changed (its rows are unchanged)."""
    if table is None or column is None:
        raise ValueError("a column change needs a table and a column")
    old = tree.tables[table]
    columns = tuple(attrs.evolve(c, **changes) if c.name == column else c for c in old.columns)
    return Tree({**tree.tables, table: Table(old.name, columns, old.rows)}, dict(tree.indexes))
