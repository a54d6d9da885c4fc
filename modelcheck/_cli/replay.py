"""``python -m modelcheck replay TRACE``: re-run a failure trace on a fresh database."""

from __future__ import annotations

import argparse
from pathlib import Path

from modelcheck._cli import Subcommand
from modelcheck._config import Config


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Replay a failure trace (written by a failing machine under .modelcheck/traces/) "
        "step by step, without Hypothesis, on a fresh database with the same target. "
        "Exit 0: the failure is gone; 1: the same failure and diff; 3: a different failure."
    )
    parser.add_argument("trace", type=Path, help="the trace JSON file")


def _run(args: argparse.Namespace, config: Config) -> int:
    from modelcheck._postgres.server import server_for
    from modelcheck._traces import trace as _trace
    from modelcheck._traces.replay import check_target, replay

    trace = _trace.load(args.trace)
    check_target(trace, config.target)  # fail before starting a server
    with server_for(config) as server:
        result = replay(trace, server, target_spec=config.target)
    print(result.report())
    return result.exit_code


SUBCOMMAND = Subcommand(
    name="replay",
    help="replay a failure trace against a fresh database (exit 0 once fixed)",
    configure=_configure,
    run=_run,
)
