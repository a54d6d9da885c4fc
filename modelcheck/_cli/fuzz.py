"""``python -m modelcheck fuzz``: the machines under HypoFuzz for a time budget."""

from __future__ import annotations

import argparse
from pathlib import Path

from modelcheck._cli import Subcommand
from modelcheck._config import Config
from modelcheck._weekly import DEFAULT_EXAMPLE_DB, DEFAULT_TRACES


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Fuzz every machine with HypoFuzz (coverage-guided, `hypothesis fuzz`) until the "
        "time budget is spent, then stop its workers, which close their servers. Failures "
        "are written as traces; examples are kept in the shared example database. "
        "Arguments after -- choose the tests, as pytest arguments (default: machines)."
    )
    parser.add_argument("--duration", default="10m", help="time budget: 60s, 10m, 2h (10m)")
    parser.add_argument(
        "-n",
        "--workers",
        type=int,
        default=1,
        help="HypoFuzz worker processes, each with its own server (default 1)",
    )
    parser.add_argument(
        "--port", type=int, default=9999, help="dashboard port on localhost (default 9999)"
    )
    parser.add_argument(
        "--no-dashboard", action="store_true", help="do not serve HypoFuzz's dashboard"
    )
    parser.add_argument(
        "--traces", type=Path, default=DEFAULT_TRACES, help=f"failure traces ({DEFAULT_TRACES})"
    )
    parser.add_argument(
        "--example-db",
        type=Path,
        default=DEFAULT_EXAMPLE_DB,
        help=f"Hypothesis example database, shared with the other runs ({DEFAULT_EXAMPLE_DB})",
    )
    parser.add_argument("--report", type=Path, help="write a JSON summary of the run here")
    parser.add_argument("pytest_args", nargs="*", help="pytest arguments choosing tests (after --)")


def _run(args: argparse.Namespace, config: Config) -> int:
    from modelcheck._fuzz import FuzzRun, run_fuzz
    from modelcheck._weekly import parse_duration
    from modelcheck.errors import ConfigError

    if args.workers < 1:
        raise ConfigError("--workers must be at least 1. To fix this, give e.g. -n 1.")
    run = FuzzRun(
        duration_s=parse_duration(args.duration),
        example_db=args.example_db,
        traces=args.traces,
        workers=args.workers,
        dashboard=not args.no_dashboard,
        port=args.port,
        profile=getattr(args, "profile", None),
        target=config.target,
        report=args.report,
        pytest_args=tuple(args.pytest_args),
    )
    return run_fuzz(run).returncode


SUBCOMMAND = Subcommand(
    name="fuzz",
    help="the machines under HypoFuzz for a time budget, with its dashboard",
    configure=_configure,
    run=_run,
)
