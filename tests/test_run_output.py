"""What a plain machine run prints: the coverage table in pytest's summary (no ``-s``
needed) and Hypothesis events for ``--hypothesis-show-statistics``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).parents[1]
pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def run_ledger(*extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODELCHECK_", "PYTEST_"))}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(REPO / "machines" / "test_ledger.py"),
            "-q",
            "-p",
            "no:cacheprovider",
            "--hypothesis-seed=3",
            *extra,
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.fixture(scope="module")
def ledger_run() -> subprocess.CompletedProcess[str]:
    return run_ledger("--hypothesis-show-statistics")


def test_the_summary_holds_every_machines_coverage_table(
    ledger_run: subprocess.CompletedProcess[str],
) -> None:
    out = ledger_run.stdout
    assert ledger_run.returncode == 0, out + ledger_run.stderr
    section = out[out.index("modelcheck coverage") :]
    for machine in ("LedgerMachine", "LedgerConcurrencyMachine"):
        assert f"{machine} on ledger (passed): " in section
    assert "rule transfer" in section
    # Only the interleaved machine has transactions to report on.
    assert section.count("contention: transactions committed") == 1
    assert "deadlocks" in section


def test_outcomes_are_hypothesis_events(ledger_run: subprocess.CompletedProcess[str]) -> None:
    out = ledger_run.stdout
    statistics = out[out.index("Hypothesis Statistics") :]
    assert "Events:" in statistics
    assert "deposit: ok" in statistics
    assert "transaction committed" in statistics


def test_under_xdist_the_workers_tables_reach_the_summary() -> None:
    result = run_ledger("-n", "2")
    assert result.returncode == 0, result.stdout + result.stderr
    section = result.stdout[result.stdout.index("modelcheck coverage") :]
    assert "LedgerMachine on ledger (passed): " in section
    assert "LedgerConcurrencyMachine on ledger (passed): " in section
