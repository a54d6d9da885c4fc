"""``python -m modelcheck bench`` in its tiny configuration: it runs and writes a
well-formed report. Benchmarks are not tests: no figure is compared with a threshold.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from modelcheck._bench import iter_figures, render_table, summarize
from modelcheck._cli import build_parser, main

FIGURES = {
    "select1",
    "select1_async",
    "reset_checkout",
    "example_start",
    "example_start_cold",
    "snapshot_read",
    "snapshot_from_model",
    "check_state",
    "bare_machine",
}
MEMORY_KEYS = {
    "machine",
    "runs",
    "traced_after_run_bytes",
    "within_run_growth_bytes",
    "examples",
    "steps",
    "traced_samples",
    "traced_first_half_median_bytes",
    "traced_second_half_median_bytes",
    "traced_growth_bytes",
    "traced_peak_bytes",
    "peak_rss_bytes",
    "rss_samples",
    "rss_growth_bytes",
}


def _positive(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


def test_summarize_gives_median_and_spread() -> None:
    figure = summarize([3.0, 1.0, 2.0, 10.0], "s")
    assert figure["median"] == 2.5
    assert (figure["min"], figure["max"]) == (1.0, 10.0)
    assert figure["q1"] <= figure["median"] <= figure["q3"]
    assert summarize([4.0], "s")["q1"] == 4.0


def test_bench_is_a_discovered_subcommand() -> None:
    args = build_parser().parse_args(["bench", "--tiny", "--report", "x.json"])
    assert args.command == "bench"
    assert args.report == Path("x.json")


@pytest.mark.slow
@pytest.mark.postgres
def test_tiny_bench_writes_a_well_formed_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], embedded_dsn: str
) -> None:
    path = tmp_path / "report.json"
    assert main(["--dsn", embedded_dsn, "bench", "--tiny", "--report", str(path)]) == 0
    report = json.loads(path.read_text())

    assert report["version"] == 1
    assert set(report["figures"]) == FIGURES
    assert set(report["machines"]) == {"BranchMachine"}
    assert _positive(report["baseline"]["rate"])
    assert report["baseline"]["rate"] == report["figures"]["select1"]["median"]
    for name, figure in iter_figures(report):
        for key in ("median", "min", "max", "q1", "q3", "ratio", "baseline_rate"):
            assert _positive(figure[key]), (name, key, figure[key])
        assert figure["min"] <= figure["median"] <= figure["max"], name
        assert figure["samples"], name
        assert figure["unit"] in {"s", "queries/s", "steps/s"}, name
    machine = report["machines"]["BranchMachine"]
    assert all(n > 0 for n in machine["steps_per_run"])
    # The same operations, bare, after each checked run (timings are reported, never
    # asserted: only that every checked run got its bare pair).
    # The reference is transaction_safe: each warm run also has its cold twin.
    paired = ("bare_ops", "bare_operations_only", "checked_step_vs_bare", "cold", "warm_vs_cold")
    for key in paired:
        assert len(machine[key]["samples"]) == len(machine["steps_per_run"]), key
        assert _positive(machine[key]["median"]), key
    assert set(report["memory"]) == MEMORY_KEYS
    assert _positive(report["memory"]["peak_rss_bytes"])
    assert report["memory"]["traced_samples"]
    assert all(_positive(sample["bytes"]) for sample in report["memory"]["rss_samples"])
    assert report["snapshot_store"]["branches"] >= 3
    assert report["snapshot_store"]["rows"] > 0

    out = capsys.readouterr().out
    assert "SELECT-1" in out
    assert render_table(report).splitlines()[0] in out
