"""pytest options for failure traces and a shared Hypothesis example database.

``--modelcheck-traces DIR``: where failing machines write their traces (default
``.modelcheck/traces``, env ``MODELCHECK_TRACES``). ``--modelcheck-example-db DIR``:
keep Hypothesis examples in this directory (env ``MODELCHECK_EXAMPLE_DB``), so long
runs on several machines or days build on each other's failures.

Load it with ``-p modelcheck._traces.plugin`` (``python -m modelcheck weekly`` does).
"""

from __future__ import annotations

import os
from typing import Final

import hypothesis
import pytest
from hypothesis.database import DirectoryBasedExampleDatabase

from modelcheck._traces import trace as _trace

ENV_EXAMPLE_DB: Final = "MODELCHECK_EXAMPLE_DB"
_PROFILE: Final = "modelcheck-shared-db"


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register ``--modelcheck-traces`` and ``--modelcheck-example-db``."""
    group = parser.getgroup("modelcheck", "modelcheck: PostgreSQL model checking")
    group.addoption(
        "--modelcheck-traces",
        default=None,
        metavar="DIR",
        help=f"Write failure traces here (default .modelcheck/traces, env {_trace.ENV_TRACES}).",
    )
    group.addoption(
        "--modelcheck-example-db",
        default=None,
        metavar="DIR",
        help=f"Keep Hypothesis examples in this directory (env {ENV_EXAMPLE_DB}).",
    )


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    """After the modelcheck profile is loaded: set the trace dir and the example db."""
    spec = config.getoption("modelcheck_target", None)
    _trace.configure(config.getoption("modelcheck_traces"), spec if isinstance(spec, str) else None)
    directory = config.getoption("modelcheck_example_db") or os.environ.get(ENV_EXAMPLE_DB)
    if directory:
        hypothesis.settings.register_profile(
            _PROFILE,
            parent=hypothesis.settings(),
            database=DirectoryBasedExampleDatabase(directory),
        )
        hypothesis.settings.load_profile(_PROFILE)
