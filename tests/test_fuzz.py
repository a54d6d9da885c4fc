"""The machines under HypoFuzz: the fuzz form, one process's session, a budgeted run."""

from __future__ import annotations

import importlib.util
import inspect
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from modelcheck._config import Config
from modelcheck._fuzz import (
    ENV_REPORTS,
    GRACE_S,
    FuzzRun,
    FuzzSession,
    fuzz_test,
    merge_reports,
    run_fuzz,
)
from modelcheck.suites.ledger.rules import LedgerMachine

ROOT = Path(__file__).parents[1]
LEDGER = str(ROOT / "machines" / "test_ledger.py")


def test_the_fuzz_form_is_a_given_test_of_the_named_machine() -> None:
    plain = LedgerMachine.pytest_test()
    assert plain.modelcheck_machine is LedgerMachine  # type: ignore[attr-defined]
    assert not hasattr(plain, "hypothesis")  # what HypoFuzz cannot drive

    form = fuzz_test(LedgerMachine)
    assert callable(form.hypothesis.inner_test)  # type: ignore[attr-defined]
    # pytest gives the fixture; @given gives the data.
    assert list(inspect.signature(form).parameters) == ["pytestconfig"]


def test_reports_of_several_workers_add_up(tmp_path: Path) -> None:
    for pid, examples, closed in ((1, 3, True), (2, 4, False)):
        counts = {"target": "ledger", "examples": examples, "steps": 10 * examples}
        counts |= {"rules": {"fund": examples}, "failing_examples": 0, "traces": []}
        report = {"pid": pid, "closed": closed, "machines": {"LedgerMachine": counts}}
        (tmp_path / f"fuzz-{pid}.json").write_text(json.dumps(report))
    machines, count = merge_reports(tmp_path)
    assert count == 2
    assert machines["LedgerMachine"]["examples"] == 7
    assert machines["LedgerMachine"]["steps"] == 70
    assert machines["LedgerMachine"]["rules"] == {"fund": 7}
    assert machines["LedgerMachine"]["workers_closed"] == 1


@pytest.mark.slow
@pytest.mark.postgres
def test_the_fuzz_form_runs_under_plain_pytest_and_closes_its_session(tmp_path: Path) -> None:
    """Without HypoFuzz the form is an ordinary @given test (the profile's examples)."""
    reports = tmp_path / "reports"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            LEDGER,
            "-k",
            "test_ledger_machine",
            "-q",
            "-p",
            "modelcheck._fuzz",
            "-p",
            "no:cacheprovider",
            f"--modelcheck-example-db={tmp_path / 'examples'}",
            f"--modelcheck-traces={tmp_path / 'traces'}",
        ],
        env={**os.environ, ENV_REPORTS: str(reports)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    [report] = [json.loads(p.read_text()) for p in reports.glob("fuzz-*.json")]
    assert report["closed"] is True  # closed at exit: databases dropped, server stopped
    counts = report["machines"]["LedgerMachine"]
    assert counts["examples"] >= 1
    assert counts["steps"] >= 1
    assert counts["failing_examples"] == 0


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.skipif(importlib.util.find_spec("hypofuzz") is None, reason="hypofuzz not installed")
def test_a_short_fuzz_run_checks_examples_and_stops_within_its_budget(tmp_path: Path) -> None:
    budget = 40.0
    run = FuzzRun(
        duration_s=budget,
        example_db=tmp_path / "examples",
        traces=tmp_path / "traces",
        dashboard=False,
        report=tmp_path / "report.json",
        pytest_args=(LEDGER, "-k", "test_ledger_machine"),
    )
    started = time.monotonic()
    result = run_fuzz(run)
    elapsed = time.monotonic() - started
    assert result.stopped == "budget"
    assert result.returncode == 0
    assert elapsed < budget + GRACE_S
    counts = result.machines["LedgerMachine"]
    assert counts["examples"] >= 1
    assert counts["steps"] >= 1  # model and Postgres compared after each one
    assert counts["workers_closed"] == 1  # the worker closed its server on the stop
    assert json.loads(run.report.read_text())["machines"] == result.machines  # type: ignore[union-attr]
    assert any((tmp_path / "examples").iterdir())  # HypoFuzz kept its corpus there


def _terminated(data: object) -> None:
    raise RuntimeError("terminating connection due to administrator command")


def test_an_example_cut_short_by_the_stop_signal_is_not_counted_as_failing() -> None:
    # A CI run counted one failing LedgerMachine example on the correct ledger: the
    # runner's SIGINT cut the running example short and its cleanup then failed.
    previous = signal.getsignal(signal.SIGINT)
    try:
        session = FuzzSession(Config(), 0, None)
        with pytest.raises(RuntimeError):
            session.run_example(LedgerMachine, _terminated, None)  # type: ignore[arg-type]
        assert session._failures["LedgerMachine"].examples == 1, "a real failure counts"
        with pytest.raises(KeyboardInterrupt):
            signal.getsignal(signal.SIGINT)(signal.SIGINT, None)  # type: ignore[misc,operator]
        assert session.interrupted
        with pytest.raises(KeyboardInterrupt):
            session.run_example(LedgerMachine, _terminated, None)  # type: ignore[arg-type]
        assert session._failures["LedgerMachine"].examples == 1, "the cut-short one does not"
    finally:
        signal.signal(signal.SIGINT, previous)
