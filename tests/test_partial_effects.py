"""Targets that leave partial effects behind are caught (issue #6): a migration whose
failing operation is swallowed, and a commit recorded before a drift check that is
only a warning. Each scenario passes on the reference and fails on the mutant."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from modelcheck._postgres.isolation import DatabasePool
from modelcheck._postgres.server import EmbeddedServer, ExternalServer
from modelcheck.errors import StateMismatch
from modelcheck.machine import SESSION_SETTINGS, MachineEnvironment, installer_for
from modelcheck.suites.vstore.faults import FaultRules, out_of_band_choices
from modelcheck.suites.vstore.mutants.catalogue import (
    CommitBeforeDriftCheck,
    DeleteDropsSchemaSeparately,
    MigrationNotAtomic,
)
from modelcheck.suites.vstore.reference.target import ReferenceTarget
from modelcheck.suites.vstore.results import VersionedStoreTarget as Target
from modelcheck.suites.vstore.rules import CommitRules, MigrationRules

pytestmark = pytest.mark.postgres


class Machine(FaultRules, MigrationRules, CommitRules):
    pass


@pytest.fixture
def machine_for(
    modelcheck_server: EmbeddedServer | ExternalServer,
) -> Iterator[Callable[[Target], Machine]]:
    opened: list[tuple[DatabasePool, Machine]] = []

    def build(target: Target) -> Machine:
        pool = DatabasePool(
            modelcheck_server, installer_for(target), ahead=0, settings=SESSION_SETTINGS
        ).open()
        machine = Machine(MachineEnvironment(target, pool))
        machine.open_connections(2)
        opened.append((pool, machine))
        return machine

    yield build
    for pool, machine in opened:
        machine.teardown()
        pool.close()


FAILING_MIGRATION = [
    {
        "op": "create_table",
        "table": "half",
        "columns": [{"name": "v", "type": "text", "nullable": True, "default": None}],
    },
    {"op": "drop_table", "table": "missing"},
]


@pytest.mark.parametrize(
    "target", [ReferenceTarget(), MigrationNotAtomic()], ids=["reference", "mutant"]
)
def test_a_half_applied_migration_is_caught(
    machine_for: Callable[[Target], Machine], target: Target
) -> None:
    machine = machine_for(target)
    if isinstance(target, MigrationNotAtomic):
        with pytest.raises(StateMismatch, match="42P01"):
            machine.run("apply_migration", "main", "0001_half", FAILING_MIGRATION)
    else:
        assert machine.run("apply_migration", "main", "0001_half", FAILING_MIGRATION) is None
        assert "half" not in machine.model.branches["main"].tree.tables


@pytest.mark.parametrize(
    "target", [ReferenceTarget(), CommitBeforeDriftCheck()], ids=["reference", "mutant"]
)
def test_a_commit_of_a_drifted_tree_is_caught(
    machine_for: Callable[[Target], Machine], target: Target
) -> None:
    machine = machine_for(target)
    machine.alter_behind_the_store("main", "create_table", None, None)
    machine.current = 0
    if isinstance(target, CommitBeforeDriftCheck):
        with pytest.raises(StateMismatch, match="schema_drift"):
            machine.run("commit", "main", "on a drifted tree")
    else:
        assert machine.run("commit", "main", "on a drifted tree") is None
        assert "schema_drift" in machine.steps[-1].outcome


@pytest.mark.parametrize(
    "target", [ReferenceTarget(), DeleteDropsSchemaSeparately()], ids=["reference", "mutant"]
)
def test_a_delete_that_drops_the_schema_separately_is_caught(
    machine_for: Callable[[Target], Machine], target: Target
) -> None:
    machine = machine_for(target)
    machine.current = 0
    tables = [{"name": "v", "type": "text", "nullable": True, "default": None}]
    machine.run(
        "apply_migration",
        "main",
        "0001_keep",
        [{"op": "create_table", "table": "kept", "columns": tables}],
    )
    if isinstance(target, DeleteDropsSchemaSeparately):
        with pytest.raises(StateMismatch, match="wt_1"):
            machine.run("delete_branch", "main")
    else:
        assert machine.run("delete_branch", "main") is None
        assert "protected_branch" in machine.steps[-1].outcome


#: A table with every kind of column out-of-band DDL can change: a NOT NULL integer
#: with a default, a nullable text column and a boolean (turned into text).
DRIFT_FIXTURE = [
    {
        "op": "create_table",
        "table": "t",
        "columns": [
            {"name": "c", "type": "integer", "nullable": False, "default": "7"},
            {"name": "d", "type": "text", "nullable": True, "default": None},
            {"name": "b", "type": "boolean", "nullable": True, "default": None},
        ],
    },
    {"op": "insert_rows", "table": "t", "rows": [["1", "one", "true"], ["2", None, None]]},
]


@pytest.mark.parametrize(
    "kind",
    [
        "create_table",
        "add_column",
        "create_index",
        "drop_column",
        "drop_default",
        "drop_not_null",
        "type_to_text",
    ],
)
def test_every_kind_of_out_of_band_ddl_is_predicted_and_refused_by_commit(
    machine_for: Callable[[Target], Machine], kind: str
) -> None:
    """The model predicts the tree each kind of DDL leaves (check_state compares it with
    the catalog and raises on a difference); verify names the branch; a commit on the
    drifted tree is refused with schema_drift."""
    machine = machine_for(ReferenceTarget())
    machine.current = 0
    assert machine.run("apply_migration", "main", "0001_fixture", DRIFT_FIXTURE) is not None
    choices = out_of_band_choices(machine.model.branches["main"].tree)
    assert kind in choices
    table, column = choices[kind][-1]
    before = machine.model.branches["main"].tree
    machine.alter_behind_the_store("main", kind, table, column)
    assert machine.model.branches["main"].tree != before
    drifted = machine.run("verify")
    assert drifted is not None
    # What verify names: the new table or index, else the changed table.
    created = {"create_table": "oob_1", "create_index": "oob_1"}
    assert [(d.branch, d.objects) for d in drifted] == [("main", (created.get(kind, "t"),))]
    assert machine.run("commit", "main", "on a drifted tree") is None
    assert "schema_drift" in machine.steps[-1].outcome
