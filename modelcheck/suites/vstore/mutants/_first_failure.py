"""A pytest plugin (``-p modelcheck.suites.vstore.mutants._first_failure``) for mutant runs.

It records when a machine first raised :class:`~modelcheck.errors.StateMismatch`,
measured from the start of the test, before Hypothesis spends time shrinking, and
writes it as JSON to the file named by ``MODELCHECK_FIRST_FAILURE``.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Final

import pytest

from modelcheck.errors import StateMismatch

ENV_FILE: Final = "MODELCHECK_FIRST_FAILURE"
_state: dict[str, float | None] = {"started": None, "first": None}


def _recording_init(original: Any) -> Any:
    def __init__(self: StateMismatch, *args: Any) -> None:
        started = _state["started"]
        if _state["first"] is None and started is not None:
            _state["first"] = time.perf_counter() - started
        original(self, *args)

    return __init__


def pytest_configure(config: pytest.Config) -> None:
    StateMismatch.__init__ = _recording_init(StateMismatch.__init__)  # type: ignore[method-assign]


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> None:
    if _state["started"] is None:
        _state["started"] = time.perf_counter()


def pytest_unconfigure(config: pytest.Config) -> None:
    path = os.environ.get(ENV_FILE)
    if path:
        Path(path).write_text(json.dumps({"first_failure_s": _state["first"]}) + "\n")
