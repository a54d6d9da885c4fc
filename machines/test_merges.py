"""Merges: fast-forward, three-way, conflicts, merges of merged branches, rollbacks after."""

from __future__ import annotations

from modelcheck.suites.vstore.rules import (
    CommitRules,
    CreateBranchRules,
    MergeRules,
    MigrationRules,
    ReadRules,
    ScenarioRules,
)


class MergeMachine(
    ScenarioRules, MergeRules, MigrationRules, CommitRules, CreateBranchRules, ReadRules
):
    """Branches diverge by migrations and commits, then merge back and forth."""


test_merge_machine = MergeMachine.pytest_test()
