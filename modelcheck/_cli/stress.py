"""``python -m modelcheck stress``: many workers in parallel, then the checker's verdict.

Exit status: 0 when every run passes, 1 on an anomaly, 3 when the checker could not
decide (``unknown``: a search bound was hit, or a call lost its connection).
"""

from __future__ import annotations

import argparse
import random
import re
import sys
from pathlib import Path

from modelcheck._cli import Subcommand
from modelcheck._config import Config
from modelcheck._postgres.isolation import DatabasePool
from modelcheck._postgres.server import EmbeddedServer, ExternalServer, find_postgres
from modelcheck._targets import resolve_target
from modelcheck.errors import ConfigError
from modelcheck.machine import installer_for
from modelcheck.suites.vstore.results import VersionedStoreTarget
from modelcheck.suites.vstore.stress import checker, report, runner

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "": 1.0}


def parse_duration(text: str) -> float:
    """``60s``, ``2m``, ``500ms`` or plain seconds → seconds."""
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*(ms|s|min|m|h|)\s*", text)
    if match is None:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 60s, 2m, 500ms)")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_sweep(text: str) -> list[int]:
    try:
        counts = [int(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of worker counts: {text!r}") from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"worker counts must be positive: {text!r}")
    return counts


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Run N workers in real parallel against the target, record every call, and "
        "check the history against the model (docs/stress.md)."
    )
    parser.add_argument("--workers", type=int, default=32, help="parallel workers (32)")
    parser.add_argument(
        "--duration", type=parse_duration, default=60.0, help="run time, e.g. 60s, 2m (60s)"
    )
    parser.add_argument("--seed", type=int, help="random seed (printed; random by default)")
    parser.add_argument("--sweep", type=parse_sweep, help="several worker counts, e.g. 8,32,64")
    parser.add_argument("--group-size", type=int, default=4, help="workers per branch group (4)")
    parser.add_argument(
        "--bound",
        type=int,
        default=checker.DEFAULT_BOUND,
        help="search states per partition before 'unknown'",
    )
    parser.add_argument(
        "--max-connections",
        type=int,
        help="embedded cluster's max_connections (default: enough for every worker)",
    )
    parser.add_argument("--report", type=Path, help="write the JSON report here")
    parser.add_argument("--html", type=Path, help="write the HTML report here")
    parser.add_argument("--traces", type=Path, help="write one JSON trace per anomaly here")


def _run(args: argparse.Namespace, config: Config) -> int:
    target = resolve_target(config.target)
    counts = args.sweep or [args.workers]
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    if min(counts) < 1 or args.group_size < 1:
        raise ConfigError("--workers and --group-size must be at least 1.")
    print(f"stress: target {target.name!r}, workers {counts}, {args.duration:g} s, seed {seed}")
    server: EmbeddedServer | ExternalServer
    if config.dsn is not None:
        server = ExternalServer(config.dsn)
    else:
        slots = args.max_connections or max(200, max(counts) + 20)
        install = find_postgres(config.pg_bin) if config.pg_bin is not None else None
        server = EmbeddedServer(install, settings={"max_connections": str(slots)})
    runs = []
    if not isinstance(target, VersionedStoreTarget):
        raise ConfigError(
            f"stress checks versioned-store targets; {target.name!r} is not one. To fix "
            "this, give a target of the built-in suite (docs/stress.md)."
        )
    with server, DatabasePool(server, installer_for(target), ahead=0) as pool:
        for workers in counts:
            settings = runner.StressConfig(
                workers=workers, duration=args.duration, seed=seed, group_size=args.group_size
            )
            with pool.database() as db:
                result = runner.run(target, db.dsn, settings, progress=print)
            print(f"checking {len(result.history)} calls …")
            runs.append(
                (
                    result,
                    checker.check(
                        result.history, setup=result.setup, final=result.final, bound=args.bound
                    ),
                )
            )
    doc = report.document(runs, seed)
    print(report.text_summary(doc))
    if args.report:
        report.write_json(args.report, doc)
        print(f"report: {args.report}")
    if args.html:
        args.html.write_text(report.render_html(doc))
        print(f"html: {args.html}")
    if args.traces and any(c.verdict != "pass" for _, c in runs):
        for path in report.write_traces(args.traces, runs, seed):
            print(f"trace: {path}", file=sys.stderr)
    print(f"seed: {seed}")
    return {"pass": 0, "anomaly": 1}.get(doc["verdict"], 3)


SUBCOMMAND = Subcommand(
    name="stress",
    help="run many workers in parallel and check the history against the model",
    configure=_configure,
    run=_run,
)
