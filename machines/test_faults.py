"""Faults: killed backends, cancelled and timed-out statements, out-of-band DDL and
migrations that fail half-way, mixed with the domain rules on interleaved connections.
After each fault the model says what must hold and the full state is compared."""

from __future__ import annotations

from modelcheck.suites.vstore.faults import FaultRules
from modelcheck.suites.vstore.rules import BranchRules, FocusedRules


class FaultMachine(FaultRules, FocusedRules, BranchRules):
    """Operations on live branches with faults injected between them."""


test_fault_machine = FaultMachine.pytest_test()
