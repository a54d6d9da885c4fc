"""``python -m modelcheck regress TRACE``: pin a failure as a plain pytest test."""

from __future__ import annotations

import argparse
from pathlib import Path

from modelcheck._cli import Subcommand
from modelcheck._config import Config
from modelcheck._traces.regress import DEFAULT_DIR


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Write a pytest file under tests/regressions/ (and a copy of the trace under "
        "tests/regressions/traces/) that replays the trace without Hypothesis: it fails "
        "while the bug exists and passes once it is fixed."
    )
    parser.add_argument("trace", type=Path, help="the trace JSON file")
    parser.add_argument(
        "--output", type=Path, default=DEFAULT_DIR, help=f"directory (default {DEFAULT_DIR})"
    )


def _run(args: argparse.Namespace, config: Config) -> int:
    from modelcheck._traces import trace as _trace
    from modelcheck._traces.regress import write_regression

    trace = _trace.load(args.trace)
    test = write_regression(trace, args.output)
    print(f"wrote {test}")
    print(f"run it: python -m pytest {test} -p no:cacheprovider")
    return 0


SUBCOMMAND = Subcommand(
    name="regress",
    help="write a pytest regression test that replays a failure trace",
    configure=_configure,
    run=_run,
)
