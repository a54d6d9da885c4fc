"""``python -m modelcheck run``: run the machines against a target and write a JSON report.

It drives pytest (the machines are plain Hypothesis tests collected from ``machines/``),
so a run here and ``nox -s stateful`` behave identically.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import pytest

from modelcheck._cli import Subcommand
from modelcheck._config import Config


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Run the differential state machines against a target; print the seed, per-rule "
        "counts and any shrunk failure; write a JSON report with --report."
    )
    parser.add_argument(
        "--machine",
        action="append",
        default=[],
        help="machine class name, e.g. ConcurrencyMachine (repeatable; default: all)",
    )
    parser.add_argument("--seed", type=int, help="Hypothesis seed (default: random, printed)")
    parser.add_argument("--report", type=Path, help="write the JSON report here")
    parser.add_argument(
        "--machines-dir",
        type=Path,
        default=Path("machines"),
        help="where the machine modules live (default: ./machines)",
    )


def _test_name(machine: str) -> str:
    return "test_" + re.sub(r"(?<!^)(?=[A-Z])", "_", machine).lower()


def pytest_args(args: argparse.Namespace, config: Config) -> list[str]:
    """The pytest command line equivalent to these options."""
    argv = [str(args.machines_dir), "-p", "no:cacheprovider", "-q", "-s"]
    argv += ["--modelcheck-profile", config.profile]
    if config.target:
        argv += ["--modelcheck-target", config.target]
    if config.dsn:
        argv += ["--modelcheck-dsn", config.dsn]
    if config.pg_bin:
        argv += ["--modelcheck-pg-bin", str(config.pg_bin)]
    if args.seed is not None:
        argv += ["--hypothesis-seed", str(args.seed)]
    if args.report:
        argv += ["--modelcheck-report", str(args.report)]
    if args.machine:
        argv += ["-k", " or ".join(_test_name(m) for m in args.machine)]
    return argv


def _run(args: argparse.Namespace, config: Config) -> int:
    if not args.machines_dir.is_dir():
        print(
            f"error: no machines directory {args.machines_dir}. To fix this, run from the "
            "repository root or pass --machines-dir.",
            file=sys.stderr,
        )
        return 2
    known = known_machines(args.machines_dir)
    unknown = [m for m in args.machine or () if m not in known]
    if unknown:
        print(
            f"error: no machine {', '.join(unknown)} in {args.machines_dir}. To fix this, "
            f"name one of: {', '.join(sorted(known))}.",
            file=sys.stderr,
        )
        return 2
    return int(pytest.main(pytest_args(args, config)))


def known_machines(directory: Path) -> set[str]:
    """The machines a directory exposes to pytest (``test_x = X.pytest_test()``), read
    from the files, not imported."""
    pattern = re.compile(r"^test_\w+\s*=\s*(\w+)\.pytest_test\(", re.M)
    return {
        name for path in directory.glob("test_*.py") for name in pattern.findall(path.read_text())
    }


SUBCOMMAND = Subcommand(
    name="run",
    help="run the state machines against a target",
    configure=_configure,
    run=_run,
)
