"""``python -m modelcheck soak``: every machine under fresh seeds, quiet and under load."""

from __future__ import annotations

import argparse
from pathlib import Path

from modelcheck._cli import Subcommand, chosen_profile
from modelcheck._config import Config


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Run every machine file under fresh seeds until the budget is spent, each seed "
        "twice: quiet, then with a CPU hog on every core. Prints steps checked, "
        "examples, crashes, false alarms (a failure on a correct target) and outcomes "
        "that differ between the two runs of a seed. Exit 1 on any of those. The profile is "
        "ci unless --profile says otherwise."
    )
    parser.add_argument("--duration", default="20m", help="time budget: 60s, 20m, 2h")
    parser.add_argument(
        "--machines-dir", type=Path, default=Path("machines"), help="default: ./machines"
    )
    parser.add_argument("--hogs", type=int, help="busy-loop processes (default: one per core)")
    parser.add_argument("--report", type=Path, help="write the JSON result here")


def _run(args: argparse.Namespace, config: Config) -> int:
    from modelcheck._soak import SoakConfig, run_soak
    from modelcheck._weekly import parse_duration

    soak = SoakConfig(
        duration_s=parse_duration(args.duration),
        machines_dir=args.machines_dir,
        # ci by default: longer examples amortise each pytest start over more steps.
        profile=chosen_profile(args, "ci"),
        target=config.target,
        report=args.report,
        **({"hogs": args.hogs} if args.hogs is not None else {}),
    )
    result = run_soak(soak)
    return 1 if result.crashes or result.false_alarms or result.divergences else 0


SUBCOMMAND = Subcommand(
    name="soak",
    help="fresh seeds, each quiet and under a CPU hog: crashes, false alarms, divergence",
    configure=_configure,
    run=_run,
)
