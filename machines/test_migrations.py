"""Migrations: real DDL applied atomically, checksums, rollbacks, failing migrations."""

from __future__ import annotations

from modelcheck.suites.vstore.rules import (
    CommitRules,
    CreateBranchRules,
    MigrationRules,
    ReadRules,
    ScenarioRules,
)


class MigrationMachine(ScenarioRules, MigrationRules, CommitRules, CreateBranchRules, ReadRules):
    """Apply, re-apply, roll back and commit migrations on main and its branches."""

    opening_rules = (
        "apply_and_undo",
        "rollback_and_reapply",
        "reapply_nearly_same",
        "drop_and_undo",
    )


test_migration_machine = MigrationMachine.pytest_test()
