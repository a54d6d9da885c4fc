"""Commits and Trinity IDs: messages kept byte for byte, versions, history, resolve."""

from __future__ import annotations

from modelcheck.suites.vstore.rules import BranchRules, CommitRules


class CommitMachine(CommitRules, BranchRules):
    """Commits on branches of branches, their identifiers, versions and logs."""

    opening_rules = ("look_alike", "commit_at_the_limit", "delete_and_recreate")


test_commit_machine = CommitMachine.pytest_test()
