"""The coverage table in pytest's terminal summary, on every run (not only with ``-s``).

Each machine's per-rule counts, outcome counts and contention figures are kept when the
session's environments close; under pytest-xdist every worker sends its lines to the
controller (``workeroutput``), which prints them all in one section.
"""

from __future__ import annotations

from typing import Any

import pytest

#: Lines of the summary, per machine, collected in this process (or from workers).
SUMMARY_KEY = pytest.StashKey[dict[str, list[str]]]()
_WORKER_FIELD = "modelcheck_summary"


def keep(config: pytest.Config, lines: dict[str, list[str]]) -> None:
    """Remember machines' summary lines; a worker also hands them to the controller."""
    kept = config.stash.setdefault(SUMMARY_KEY, {})
    kept.update(lines)
    workeroutput: dict[str, Any] | None = getattr(config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput[_WORKER_FIELD] = dict(kept)


def received(config: pytest.Config, node: Any) -> None:
    """A worker finished: take its lines."""
    lines = getattr(node, "workeroutput", {}).get(_WORKER_FIELD)
    if lines:
        config.stash.setdefault(SUMMARY_KEY, {}).update(lines)


def write(reporter: Any, config: pytest.Config) -> None:
    """The ``modelcheck coverage`` section, one block per machine, sorted by name."""
    lines = config.stash.get(SUMMARY_KEY, {})
    if not lines or hasattr(config, "workeroutput"):
        return
    reporter.write_sep("-", "modelcheck coverage")
    for machine in sorted(lines):
        for line in lines[machine]:
            reporter.write_line(line)
