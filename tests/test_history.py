"""Stress for any spec: parallel workers, a history, a linearization (the ledger)."""

from __future__ import annotations

import asyncio

import pytest

from modelcheck import DatabasePool, Server
from modelcheck._linearize import Call, check_history, record_history
from modelcheck.machine import SESSION_SETTINGS, installer_for
from modelcheck.spec import OperationError
from modelcheck.suites.ledger.rules import stress_call
from modelcheck.suites.ledger.spec import LEDGER, Account, LedgerState
from modelcheck.suites.ledger.target import LedgerTarget, TransferWithoutLock


def _call(
    i: int, op: str, args: tuple[object, ...], span: tuple[float, float], out: object
) -> Call:
    return Call(i, i, op, args, span[0], span[1], out)


def test_a_linearization_respects_real_time() -> None:
    opened = [_call(0, "open_account", ("ann",), (0, 1), 1)]
    # Two overlapping deposits may go in either order; the balance read after both must
    # see both.
    deposits = [
        _call(1, "deposit", ("ann", 5), (2, 4), 15),
        _call(2, "deposit", ("ann", 10), (3, 5), 10),
        _call(3, "balance", ("ann",), (6, 7), 15),
    ]
    final = LedgerState({"ann": Account(1, 15)}, ())
    verdict = check_history(LEDGER, [*opened, *deposits], final)
    assert verdict.outcome == "pass", verdict
    assert verdict.order == (0, 2, 1, 3)
    # The same read before the deposits ended would be allowed to see 10; after them, not.
    stale = [*opened, *deposits[:2], _call(3, "balance", ("ann",), (6, 7), 10)]
    assert check_history(LEDGER, stale, final).outcome == "anomaly"


def test_a_legal_abort_has_no_effect_and_a_wrong_state_is_an_anomaly() -> None:
    history = [
        _call(0, "open_account", ("ann",), (0, 1), 1),
        _call(1, "deposit", ("ann", 5), (2, 3), OperationError("deadlock_detected", "40P01")),
    ]
    assert check_history(LEDGER, history, LedgerState({"ann": Account(1, 0)}, ())).outcome == (
        "pass"
    )
    lost = LedgerState({"ann": Account(1, 5)}, ())
    assert check_history(LEDGER, history, lost).outcome == "anomaly"


def _stress(server: Server, target: LedgerTarget, seed: int) -> str:
    options = " ".join(f"-c {k}={v}" for k, v in SESSION_SETTINGS.items())
    with DatabasePool(server, installer_for(target), ahead=0) as pool, pool.database() as db:
        history, final = asyncio.run(
            record_history(
                LEDGER,
                target,
                db.dsn,
                workers=4,
                calls_per_worker=12,
                draw=stress_call,
                seed=seed,
                options=options,
            )
        )
    return check_history(LEDGER, history, final).outcome


@pytest.mark.postgres
@pytest.mark.slow
def test_the_ledger_under_parallel_load_linearizes(modelcheck_server: Server) -> None:
    outcomes = [_stress(modelcheck_server, LedgerTarget(), seed) for seed in range(3)]
    assert outcomes == ["pass"] * 3


@pytest.mark.postgres
@pytest.mark.slow
def test_a_transfer_without_its_lock_is_caught_under_parallel_load(
    modelcheck_server: Server,
) -> None:
    outcomes = [_stress(modelcheck_server, TransferWithoutLock(), seed) for seed in range(5)]
    assert "anomaly" in outcomes, outcomes
