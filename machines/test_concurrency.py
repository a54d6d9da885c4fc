"""Concurrency: domain operations on 2-4 interleaved connections, at every isolation level.

Transactions stay open across steps, statements block on each other's locks (detected,
never timed), deadlocks and serialization failures abort transactions; after every
step the committed state must be the model after some serial order of the committed
transactions. The operations are aimed at live branches (hostile inputs are the
sequential machines' job), so transactions live long enough to contend.
"""

from __future__ import annotations

from modelcheck.suites.vstore.contention import ContentionRules
from modelcheck.suites.vstore.rules import BranchRules, FocusedRules, StaleSnapshotRules


class ConcurrencyMachine(ContentionRules, StaleSnapshotRules, FocusedRules, BranchRules):
    """Commits, migrations, merges, branches and reads sent on interleaved connections."""

    #: Three races, each another operation (``draw_unvisited``): the bugs of one
    #: operation's race are the densest class, and six operations share the rule.
    opening_rules = (
        "same_key_race",
        "same_key_race",
        "same_key_race",
        "opposite_lock_orders",
        "stale_snapshot_write",
        "commit_race",
        "same_key_race_undo",
        "write_then_roll_back",
        "read_own_writes",
    )


test_concurrency_machine = ConcurrencyMachine.pytest_test()
