"""Branches: create (hostile names), delete, protect main, log, resolve, verify."""

from __future__ import annotations

from modelcheck.suites.vstore.rules import BranchRules


class BranchMachine(BranchRules):
    """Branch lifecycle and Trinity IDs of branches."""

    opening_rules = ("look_alike", "delete_and_recreate")


test_branch_machine = BranchMachine.pytest_test()
