"""Every domain rule in one machine: the widest net for sequential bugs."""

from __future__ import annotations

from modelcheck.suites.vstore.rules import (
    BranchRules,
    CommitRules,
    MergeRules,
    MigrationRules,
    ScenarioRules,
)


class CombinedMachine(ScenarioRules, MergeRules, MigrationRules, CommitRules, BranchRules):
    """Branches, commits, migrations and merges interleaved freely."""

    opening_rules = ("look_alike", "apply_and_undo", "remove_and_merge", "delete_with_tree")


test_combined_machine = CombinedMachine.pytest_test()
