"""Merges: fast-forward, three-way, conflicts, merges of merged branches."""

from __future__ import annotations

from modelcheck.rules import BranchRules, CommitRules, MergeRules, MigrationRules


class MergeMachine(MergeRules, MigrationRules, CommitRules, BranchRules):
    """Branches diverge by migrations and commits, then merge back and forth."""


test_merge_machine = MergeMachine.pytest_test()
