"""``python -m modelcheck show TRACE``: a failure trace as a self-contained HTML page."""

from __future__ import annotations

import argparse
from pathlib import Path

from modelcheck._cli import Subcommand
from modelcheck._config import Config


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Write an HTML page (no network resources): the failing step and the whole "
        "diff first, then the steps in order in one lane per connection that took part, "
        "blocked waits, aborts and errors coloured, steps that changed nothing folded."
    )
    parser.add_argument("trace", type=Path, help="the trace JSON file")
    parser.add_argument("-o", "--output", type=Path, help="default: the trace path with .html")


def _run(args: argparse.Namespace, config: Config) -> int:
    from modelcheck._traces import trace as _trace
    from modelcheck._traces.show import render

    trace = _trace.load(args.trace)
    output: Path = args.output or args.trace.with_suffix(".html")
    output.write_text(render(trace), encoding="utf-8")
    print(f"wrote {output}")
    return 0


SUBCOMMAND = Subcommand(
    name="show",
    help="write a failure trace as a self-contained HTML page",
    configure=_configure,
    run=_run,
)
