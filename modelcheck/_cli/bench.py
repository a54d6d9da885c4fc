"""``python -m modelcheck bench``: speed figures against a SELECT-1 baseline, as JSON."""

from __future__ import annotations

import argparse
from pathlib import Path

import attrs

from modelcheck._bench import DEFAULT_REPORT, TINY, BenchConfig, render_table, write_report
from modelcheck._cli import Subcommand
from modelcheck._config import Config


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Measure the SELECT-1 baseline, per-example reset, snapshot reads, checked steps "
        "per second of every machine, a database-free machine and memory over a long run; "
        "print a table and write a JSON report. Nothing is asserted."
    )
    defaults = BenchConfig()
    parser.add_argument("--report", type=Path, default=Path(DEFAULT_REPORT), help="JSON path")
    parser.add_argument(
        "--repeats",
        type=int,
        default=defaults.repeats,
        help=f"measurements of each figure, for the spread ({defaults.repeats})",
    )
    parser.add_argument(
        "--examples",
        type=int,
        default=defaults.machine_examples,
        help=f"examples per machine measurement ({defaults.machine_examples})",
    )
    parser.add_argument(
        "--steps",
        type=int,
        default=defaults.machine_steps,
        help=f"steps per example ({defaults.machine_steps})",
    )
    parser.add_argument(
        "--memory-examples",
        type=int,
        default=defaults.memory_examples,
        help=f"examples of the long run whose RSS growth is reported ({defaults.memory_examples})",
    )
    parser.add_argument("--machines-dir", type=Path, help="default: the repository's machines/")
    parser.add_argument(
        "--machine",
        action="append",
        dest="machines",
        metavar="FILE",
        help="a machines/ file to run (repeatable; default: all of them)",
    )
    parser.add_argument("--tiny", action="store_true", help="smallest run (for smoke tests)")


def _run(args: argparse.Namespace, config: Config) -> int:
    from modelcheck._bench import run_bench
    from modelcheck._postgres.server import server_for
    from modelcheck._targets import resolve_target

    if args.tiny:
        bench = TINY
    else:
        bench = BenchConfig(
            repeats=args.repeats,
            machine_examples=args.examples,
            machine_steps=args.steps,
            memory_examples=args.memory_examples,
        )
    bench = attrs.evolve(
        bench,
        machines_dir=args.machines_dir,
        machines=tuple(args.machines) if args.machines else bench.machines,
    )
    target = resolve_target(config.target)
    with server_for(config) as server:
        report = run_bench(server, target, bench)
    write_report(report, args.report)
    print(render_table(report))
    print(f"report: {args.report}")
    return 0


SUBCOMMAND = Subcommand(
    name="bench",
    help="measure steps/s, reset and snapshot costs against a SELECT-1 baseline",
    configure=_configure,
    run=_run,
)
