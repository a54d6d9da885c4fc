"""The second suite: a ledger of accounts and transfers, sequential and interleaved."""

from __future__ import annotations

from modelcheck.suites.ledger.rules import LedgerConcurrencyMachine, LedgerMachine

test_ledger_machine = LedgerMachine.pytest_test()
test_ledger_concurrency_machine = LedgerConcurrencyMachine.pytest_test()
