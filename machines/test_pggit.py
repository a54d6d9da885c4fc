"""pgGit v0.2.1 (docs/case-studies/pggit.md): sequential and interleaved."""

from __future__ import annotations

import os

import pytest

if not os.environ.get("MODELCHECK_PGGIT_SRC"):
    pytest.skip(
        "set MODELCHECK_PGGIT_SRC=/path/to/pgGit or run `nox -s pggit -- --pggit-src DIR`",
        allow_module_level=True,
    )

from modelcheck.errors import InvalidTarget
from modelcheck.suites.pggit.target import source_dir

try:
    source_dir()  # a directory that is not pgGit: one message, before any database
except InvalidTarget as exc:
    pytest.exit(str(exc), returncode=pytest.ExitCode.USAGE_ERROR)

from modelcheck.suites.pggit.rules import (
    PgGitConcurrencyMachine,
    PgGitFaultMachine,
    PgGitMachine,
)

test_pggit_machine = PgGitMachine.pytest_test()
test_pggit_concurrency_machine = PgGitConcurrencyMachine.pytest_test()
test_pggit_fault_machine = PgGitFaultMachine.pytest_test()
