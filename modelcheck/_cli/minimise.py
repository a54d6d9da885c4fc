"""``python -m modelcheck minimise TRACE``: drop every step the failure does not need."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from modelcheck._cli import Subcommand
from modelcheck._config import Config


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Delta-debug a failure trace: replay smaller and smaller versions of it, each on "
        "a fresh database, and keep every removal after which the same failure (heading, "
        "place and diff up to step numbers and ids) still happens. Writes TRACE.min.json "
        "(or -o), which replays like any trace. Exit 0 when a trace was written."
    )
    parser.add_argument("trace", type=Path, help="the trace JSON file")
    parser.add_argument("-o", "--output", type=Path, help="default: TRACE with .min.json")
    parser.add_argument(
        "--budget", default="120s", help="time budget for the replays: 30s, 2m (120s)"
    )


def _run(args: argparse.Namespace, config: Config) -> int:
    from modelcheck._postgres.server import server_for
    from modelcheck._traces import trace as _trace
    from modelcheck._traces.minimise import minimise
    from modelcheck._traces.replay import check_target
    from modelcheck._weekly import parse_duration

    trace = _trace.load(args.trace)
    check_target(trace, config.target)  # fail before starting a server
    with server_for(config) as server:
        result = minimise(
            trace, server, budget_s=parse_duration(args.budget), target_spec=config.target
        )
    output = args.output or args.trace.with_suffix(".min.json")
    output.write_text(json.dumps(result.trace, indent=1) + "\n", encoding="utf-8")
    how = "1-minimal" if result.complete else "budget spent; the smallest found so far"
    print(
        f"{result.steps_before} -> {result.steps_after} steps ({how}; {result.replays} "
        f"replays in {result.seconds:.1f} s)\ntrace: {output}\n"
        f"replay: {_trace.replay_command(output)}"
    )
    return 0


SUBCOMMAND = Subcommand(
    name="minimise",
    help="remove every step a failure trace does not need (delta debugging by replay)",
    configure=_configure,
    run=_run,
)
