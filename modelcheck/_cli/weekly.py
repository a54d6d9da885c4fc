"""``python -m modelcheck weekly``: fresh seeds for every machine until a budget is spent."""

from __future__ import annotations

import argparse
from pathlib import Path

from modelcheck._cli import Subcommand, chosen_profile
from modelcheck._config import Config
from modelcheck._weekly import DEFAULT_EXAMPLE_DB, DEFAULT_TRACES


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Run every machine file under fresh random seeds (each printed) until the time "
        "budget is spent; --shard i/n takes a deterministic share for CI matrices. "
        "Failures are written as traces and kept in a Hypothesis example database. "
        "Arguments after -- go to every pytest run."
    )
    parser.add_argument("--duration", default="30m", help="time budget: 60s, 30m, 2h")
    parser.add_argument("--shard", default="1/1", help="this job's share, i/n (default 1/1)")
    parser.add_argument(
        "--machines-dir", type=Path, default=Path("machines"), help="default: ./machines"
    )
    parser.add_argument(
        "--traces", type=Path, default=DEFAULT_TRACES, help=f"failure traces ({DEFAULT_TRACES})"
    )
    parser.add_argument(
        "--example-db",
        type=Path,
        default=DEFAULT_EXAMPLE_DB,
        help=f"Hypothesis example database, kept between runs ({DEFAULT_EXAMPLE_DB})",
    )
    parser.add_argument("--report", type=Path, help="write a JSON summary of the runs here")
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")


def _run(args: argparse.Namespace, config: Config) -> int:
    from modelcheck._weekly import WeeklyConfig, exit_code, parse_duration, parse_shard, run_weekly

    weekly = WeeklyConfig(
        duration_s=parse_duration(args.duration),
        shard=parse_shard(args.shard),
        machines_dir=args.machines_dir,
        traces=args.traces,
        example_db=args.example_db,
        # The weekly profile unless --profile / MODELCHECK_PROFILE chose another.
        profile=chosen_profile(args, "weekly"),
        target=config.target,
        report=args.report,
        pytest_args=tuple(args.pytest_args),
    )
    return exit_code(run_weekly(weekly))


SUBCOMMAND = Subcommand(
    name="weekly",
    help="long runs: every machine under fresh seeds for a time budget, sharded",
    configure=_configure,
    run=_run,
)
