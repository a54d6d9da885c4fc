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


test_combined_machine = CombinedMachine.pytest_test()
