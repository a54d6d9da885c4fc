"""Concurrency: the domain rules on 2-4 interleaved connections, at every isolation level.

Transactions stay open across steps, statements block on each other's locks (detected,
never timed), deadlocks and serialization failures abort transactions; after every
step the committed state must be the model after some serial order of the committed
transactions.
"""

from __future__ import annotations

from modelcheck.interleaving import InterleavedMachine
from modelcheck.rules import BranchRules, CommitRules, FocusedRules, MergeRules, MigrationRules


class ConcurrencyMachine(
    InterleavedMachine, FocusedRules, MergeRules, MigrationRules, CommitRules, BranchRules
):
    """Every domain rule, sent on interleaved connections inside open transactions."""


test_concurrency_machine = ConcurrencyMachine.pytest_test()
