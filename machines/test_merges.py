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

    opening_rules = ("remove_and_merge", "diverge_types_and_merge", "apply_and_undo")


test_merge_machine = MergeMachine.pytest_test()
