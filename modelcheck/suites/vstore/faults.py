"""Faults of the versioned store's own domain, on top of the engine's backend faults.

- ``out_of_band_ddl``: someone alters a branch schema behind the store's back:
  ``verify()`` must name exactly that branch and object; a commit there fails with
  ``schema_drift``.
- ``failing_migration``: a migration whose k-th operation really fails in Postgres:
  no partial DDL, no record, version unchanged.

Server restarts and connection exhaustion need a cluster of their own;
``tests/test_fault_clusters.py`` covers them.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import precondition, rule
from psycopg import sql

from modelcheck.faults import BackendFaultRules
from modelcheck.suites.vstore.domain import ddl
from modelcheck.suites.vstore.domain.tree import Tree
from modelcheck.suites.vstore.rules import StaleSnapshotRules


class FaultRules(BackendFaultRules, StaleSnapshotRules):
    """Mix into an interleaved machine (with domain rules) to inject faults."""

    _oob_counter = 0
    _failing_counter = 0

    @precondition(lambda self: self.is_quiescent())
    @rule(data=st.data())
    def out_of_band_ddl(self, data: st.DataObject) -> None:
        """ALTER a branch's working tree directly, as a careless colleague would."""
        active = sorted(n for n, b in self.model.branches.items() if b.status == "active")
        name = data.draw(st.sampled_from(active), label="branch")
        tables = sorted(self.model.branches[name].tree.tables, key=str.encode)
        table = data.draw(st.sampled_from(tables), label="table") if tables else None
        self.coverage.rules["out_of_band_ddl"] += 1
        self.alter_behind_the_store(name, table)

    def alter_behind_the_store(self, name: str, table: str | None) -> None:
        """Add a column to ``table`` (or create a table) in branch ``name``'s schema
        directly; the model's live tree changes, its recorded tree does not."""
        branch = self.model.branches[name]
        self._oob_counter += 1
        column = f"oob_{self._oob_counter}"
        schema = f"wt_{self.model.pk_of('branch', name)}"
        if table is not None:
            op: dict[str, Any] = {
                "op": "add_column",
                "table": table,
                "column": {"name": column, "type": "integer", "nullable": True, "default": None},
            }
            statement = sql.SQL("ALTER TABLE {}.{} ADD COLUMN {} integer").format(
                sql.Identifier(schema), sql.Identifier(table), sql.Identifier(column)
            )
        else:
            op = {
                "op": "create_table",
                "table": column,
                "columns": [{"name": "x", "type": "integer", "nullable": True, "default": None}],
            }
            statement = sql.SQL("CREATE TABLE {}.{} (x integer)").format(
                sql.Identifier(schema), sql.Identifier(column)
            )
        self._fault_step(self.sessions[0], f"out-of-band DDL on {name!r}")
        self.await_(self.admin.execute(statement))
        branch.tree = ddl.APPLY[op["op"]](branch.tree, op)
        self.oracle.base = self.oracle.found = self.model
        self.check_state(self.steps[-1])

    @precondition(lambda self: self.current_is_free())
    @rule(data=st.data(), k=st.integers(1, 4))
    def failing_migration(self, data: st.DataObject, k: int) -> None:
        """k-1 operations that work, then one that really fails in Postgres."""
        active = sorted(n for n, b in self.model.branches.items() if b.status == "active")
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
        live = sorted(n for n, b in self.model.branches.items() if b.status == "active")
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
