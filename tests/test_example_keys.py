"""Each machine (on each target) keeps its own saved examples in Hypothesis's database."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from hypothesis.internal.reflection import function_digest

from modelcheck.machine import machine_factory
from modelcheck.suites.ledger.rules import LedgerConcurrencyMachine, LedgerMachine


def _key(machine: Any, target: str) -> bytes:
    environment: Any = SimpleNamespace(target=SimpleNamespace(name=target))
    return function_digest(machine_factory(machine, environment))


def test_machines_and_targets_get_their_own_database_key() -> None:
    assert _key(LedgerMachine, "ledger") == _key(LedgerMachine, "ledger")
    assert _key(LedgerMachine, "ledger") != _key(LedgerConcurrencyMachine, "ledger")
    assert _key(LedgerMachine, "ledger") != _key(LedgerMachine, "ledger-mutant")
