"""Soak: outcome comparison, the CPU hog's lifetime, and one real round on a machine."""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import pytest

from modelcheck._soak import SoakConfig, SoakResult, compare, cpu_hog, run_soak

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
    result = run_soak(SoakConfig(duration_s=0.1, machines_dir=machines, hogs=1), out=out)
    assert result.runs == 2, out.getvalue()
    assert result.steps > 0
    assert result.crashes == []
    assert result.false_alarms == []
    assert result.divergences == [], result.divergences
    assert "divergent outcomes 0" in out.getvalue()
    assert os.cpu_count()
