"""The second suite, end to end: its own layout, observer, classifier and laws, and
mutants of it that the machines must kill."""

from __future__ import annotations

from collections.abc import Iterator

import hypothesis
import psycopg
import pytest

from modelcheck import (
    DatabasePool,
    InvalidDefinition,
    MachineEnvironment,
    Server,
    StateMismatch,
    run_machine,
)
from modelcheck.machine import SESSION_SETTINGS, installer_for
from modelcheck.suites.ledger.rules import LedgerConcurrencyMachine, LedgerMachine
from modelcheck.suites.ledger.target import (
    DigestIgnoresAmount,
    IdFromMaxPlusOne,
    LedgerTarget,
    TransferWithoutLock,
)
from modelcheck.suites.vstore.rules import BranchRules

pytestmark = pytest.mark.postgres


def _settings(examples: int, steps: int, *, shrink: bool = True) -> hypothesis.settings:
    phases = list(hypothesis.Phase) if shrink else [hypothesis.Phase.generate]
    return hypothesis.settings(
        max_examples=examples,
        stateful_step_count=steps,
        deadline=None,
        database=None,
        phases=phases,
    )


@pytest.fixture
def ledger_pool(modelcheck_server: Server) -> Iterator[DatabasePool]:
    target = LedgerTarget()
    with DatabasePool(
        modelcheck_server, installer_for(target), ahead=0, settings=SESSION_SETTINGS
    ) as pool:
        yield pool


def test_the_ledger_classifies_its_p0001_errors_by_message(ledger_pool: DatabasePool) -> None:
    target = LedgerTarget()
    with ledger_pool.database() as db, psycopg.connect(db.dsn, autocommit=True) as conn:
        for statement, kind in [
            ("SELECT ledger.open('Bad Name')", "bad_owner"),
            ("SELECT ledger.deposit('nobody', 5)", "no_account"),
            ("SELECT ledger.deposit('nobody', 0)", "bad_amount"),
        ]:
            with pytest.raises(psycopg.Error) as raised:
                conn.execute(statement.encode())
            error = target.classify(raised.value)
            assert (error.sqlstate, error.kind) == ("P0001", kind)
        with pytest.raises(psycopg.Error) as raised:
            conn.execute(b"SELECT 1/0")
        assert target.classify(raised.value).outcome == ("22012", "ddl")


@pytest.mark.parametrize("machine", [LedgerMachine, LedgerConcurrencyMachine])
def test_the_correct_ledger_passes(ledger_pool: DatabasePool, machine: type) -> None:
    environment = MachineEnvironment(LedgerTarget(), ledger_pool, "dev", seed=3)
    run_machine(machine, environment, _settings(40, 25))
    result = environment.results[machine.__name__]
    assert result["outcome"] == "passed"
    assert result["rules_unsupported"] == ["close_account"]
    assert result["rules"]["transfer"] > 0


@pytest.mark.slow
@pytest.mark.parametrize(
    ("mutant", "machine", "law"),
    [
        (DigestIgnoresAmount, LedgerMachine, "transfer.digest"),
        (IdFromMaxPlusOne, LedgerConcurrencyMachine, "account.id"),
        (TransferWithoutLock, LedgerConcurrencyMachine, "no serial order"),
    ],
)
def test_each_ledger_mutant_is_killed(
    modelcheck_server: Server, mutant: type[LedgerTarget], machine: type, law: str
) -> None:
    target = mutant()
    with DatabasePool(
        modelcheck_server, installer_for(target), ahead=0, settings=SESSION_SETTINGS
    ) as pool:
        environment = MachineEnvironment(target, pool, "dev", seed=1)
        with pytest.raises(StateMismatch) as failed:
            # Generation alone: the kill is the claim; shrinking is measured elsewhere.
            run_machine(machine, environment, _settings(400, 30, shrink=False))
    assert law in str(failed.value)


def test_a_machine_of_another_spec_is_refused(ledger_pool: DatabasePool) -> None:
    environment = MachineEnvironment(LedgerTarget(), ledger_pool, "dev", seed=1)

    class Branches(BranchRules):
        pass

    with pytest.raises(InvalidDefinition, match="implements spec 'ledger'"):
        run_machine(Branches, environment, _settings(1, 1))
