"""Soak: outcome comparison, the CPU hog's lifetime, and one real round on a machine."""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import pytest

from modelcheck._soak import (
    SoakConfig,
    SoakResult,
    compare,
    cpu_hog,
    first_difference,
    run_soak,
)
from modelcheck.machine import TRAIL_LOG_ENV

MACHINES = Path(__file__).parents[1] / "machines"


def _report(blocked: int, steps: int = 40) -> dict[str, object]:
    return {
        "M": {
            "outcome": "passed",
            "examples": 5,
            "steps": steps,
            "rules": {"commit": 3},
            "outcomes": {"statement blocked": blocked, "commit: ok": 3},
        }
    }


def test_the_same_outcomes_do_not_diverge_and_others_do() -> None:
    assert compare("s", _report(2), _report(2)) == []
    (line,) = compare("s", _report(2), _report(3))
    assert "'statement blocked': (2, 3)" in line
    assert compare("s", _report(2), _report(2, steps=41))
    assert compare("s", _report(2), {})  # a machine that did not run at all diverges
    same_counts_other_order = _report(2)
    same_counts_other_order["M"]["trail"] = "another order of the same outcomes"  # type: ignore[index]
    assert compare("s", _report(2), same_counts_other_order)


def test_the_coverage_margin_keeps_the_rarest_rule_of_any_run() -> None:
    result = SoakResult()
    result.note_rules("M", {"commit": 30, "cancel": 4})
    result.note_rules("M", {"commit": 2, "cancel": 9})
    result.note_rules("M", {"commit": 50, "cancel": 50})
    assert result.rarest == {"M": ("commit", 2)}


def test_the_hog_runs_while_open_and_is_gone_after() -> None:
    with cpu_hog(2) as hogs:
        assert len(hogs) == 2
        assert all(h.poll() is None for h in hogs)
    assert all(h.returncode is not None for h in hogs)


@pytest.mark.postgres
@pytest.mark.slow
def test_one_round_of_a_correct_target_is_clean(tmp_path: Path) -> None:
    machines = tmp_path / "machines"
    machines.mkdir()
    shutil.copy(MACHINES / "test_ledger.py", machines)
    out = io.StringIO()
    trails = tmp_path / "trails"
    config = SoakConfig(duration_s=0.1, machines_dir=machines, hogs=1, trails_dir=trails)
    result = run_soak(config, out=out)
    assert result.runs == 2, out.getvalue()
    assert result.steps > 0
    assert result.crashes == []
    assert result.false_alarms == []
    assert result.divergences == [], result.divergences
    assert "divergent outcomes 0" in out.getvalue()
    assert os.cpu_count()
    # Both runs wrote their trails as text; equal trails are not kept.
    assert trails.exists()
    assert list(trails.iterdir()) == []


def test_a_divergence_names_the_first_step_where_the_trails_part(tmp_path: Path) -> None:
    for how, third in (("quiet", "rule commit | commit: ok"), ("loaded", "rule commit")):
        (tmp_path / how).mkdir()
        lines = ["example", f"  # 1. [c0] begin({how!r})", "rule begin | begin serializable"]
        lines += [third, "rule log | log: ok"]
        (tmp_path / how / "M.trail").write_text("\n".join(lines) + "\n")
    found = first_difference(tmp_path)
    assert "M: first differs at step line 3" in found
    assert "calls before it: 1. [c0] begin('quiet')" in found
    assert "quiet:  rule commit | commit: ok" in found
    assert "loaded: rule commit\n" in found + "\n"
    (tmp_path / "loaded" / "M.trail").write_text((tmp_path / "quiet" / "M.trail").read_text())
    assert first_difference(tmp_path) == ""


def test_a_machine_run_writes_its_trail_as_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pytester: pytest.Pytester
) -> None:
    pytester.copy_example(str(MACHINES / "test_ledger.py"))
    monkeypatch.setenv(TRAIL_LOG_ENV, str(tmp_path))
    result = pytester.runpytest_subprocess(
        "test_ledger.py",
        "-k",
        "test_ledger_machine",
        "-p",
        "no:cacheprovider",
        "--hypothesis-seed=1",
    )
    result.assert_outcomes(passed=1)
    lines = (tmp_path / "LedgerMachine.trail").read_text().splitlines()
    assert lines[0] == "example"
    assert sum(line.startswith("rule ") for line in lines) > 10
