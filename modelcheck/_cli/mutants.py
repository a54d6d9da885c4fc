"""``python -m modelcheck mutants``: prove the machines kill every catalogued mutant."""

from __future__ import annotations

import argparse
from pathlib import Path

from modelcheck._cli import Subcommand, chosen_profile
from modelcheck._config import Config
from modelcheck.suites.vstore.mutants.runner import DEFAULT_REPORT, Outcome


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Run the machines against every mutant of the reference target (each against "
        "the machines expected to kill it; the first failure kills it) and the correct "
        "reference (every machine must pass). A run that ends in neither a pass nor a "
        "mismatch (CoverageError, crash, timeout) is reported as invalid, never as a pass "
        "or a survival. Prints a table and writes a JSON report plus a Markdown table "
        "next to it. The profile defaults to ci; the exit status is 0 only when every "
        "mutant was killed and the reference passed."
    )
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument(
        "--mutant", action="append", dest="mutants", metavar="NAME", help="run only these"
    )
    parser.add_argument("--report", type=Path, default=Path(DEFAULT_REPORT), help="JSON path")
    parser.add_argument("--jobs", type=int, default=2, help="parallel subprocesses (default 2)")
    parser.add_argument("--seed", type=int, default=1, help="Hypothesis seed of every run")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per machine run")
    parser.add_argument(
        "--no-reference", action="store_true", help="skip the run of the correct reference"
    )
    parser.add_argument(
        "--minimise-budget",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="after each kill, delta-debug its trace for at most this long (0: do not)",
    )
    parser.add_argument("--machines-dir", type=Path, help="default: the repository's machines/")
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=Path(".modelcheck/mutants"),
        help="scratch directories of the runs (logs, traces)",
    )


def _minimised(outcome: Outcome) -> str:
    if outcome.minimised_steps is None:
        return ""
    return f", minimised to {outcome.minimised_steps} in {outcome.minimise_s} s"


def _run(args: argparse.Namespace, config: Config) -> int:
    from modelcheck.suites.vstore.mutants.catalogue import CATALOGUE, find
    from modelcheck.suites.vstore.mutants.runner import (
        RunConfig,
        default_machines_dir,
        render_table,
        run_all,
        summary,
        write_report,
    )

    if args.list:
        for info in CATALOGUE:
            print(
                f"{info.name:<40} {info.bug_class:<20} {','.join(info.killers):<22} "
                f"{info.description}"
            )
        return 0
    try:
        chosen = [find(n) for n in args.mutants] if args.mutants else list(CATALOGUE)
    except KeyError as exc:
        print(f"error: {exc.args[0]}")
        return 2
    # A bare `mutants` run means the ci profile unless one was asked for explicitly.
    profile = chosen_profile(args, "ci")
    run_config = RunConfig(
        profile=profile,
        seed=args.seed,
        machines_dir=args.machines_dir or default_machines_dir(),
        work_dir=args.work_dir,
        dsn=config.dsn,
        pg_bin=config.pg_bin,
        timeout_s=args.timeout,
        minimise_budget_s=args.minimise_budget,
    )

    def progress(outcome: Outcome) -> None:
        detail = (
            f"by {outcome.machine} in {outcome.time_to_kill_s} s, {outcome.shrunk_steps} steps"
            f"{_minimised(outcome)}"
            if outcome.verdict == "killed"
            else (outcome.failure or "")[:200]
        )
        print(f"{outcome.name}: {outcome.verdict} {detail} (run {outcome.run_s} s)", flush=True)

    outcomes = run_all(
        chosen, run_config, jobs=args.jobs, reference=not args.no_reference, progress=progress
    )
    json_path, md_path = write_report(outcomes, args.report, run_config)
    print(render_table(outcomes))
    stats = summary(outcomes)
    invalid = stats["invalid"]
    print(
        f"{stats['killed']}/{stats['mutants']} killed; invalid {len(invalid)}"
        f"{' (' + ', '.join(invalid) + ')' if invalid else ''}; "
        f"reference {stats['reference'] or 'not run'}; "
        f"report: {json_path} and {md_path}"
    )
    ok = stats["killed"] == stats["mutants"] and stats["reference"] in (None, "passed")
    return 0 if ok else 1


SUBCOMMAND = Subcommand(
    name="mutants",
    help="run the machines against the mutant catalogue; every mutant must be killed",
    configure=_configure,
    run=_run,
)
