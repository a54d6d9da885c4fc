"""Run the machines against mutants, each in its own pytest subprocess, and report.

A mutant is run against the machines its catalogue entry names, in order; the first
machine that fails kills it. Each run is ``python -m pytest machines/test_<m>.py
--modelcheck-target <mutant> -x`` in a scratch directory (its own Hypothesis example
database and trace files, so one run never replays another's failure), which also
isolates crashes. The correct reference runs every machine and must pass.

A run proves something only when it ended in a pass or in a mismatch the machine
raised (a kill). Anything else (a ``CoverageError``, a crash, a timeout, a failure
that is not a mismatch, a missing report) is ``invalid``: never counted as a pass of
the reference nor as a mutant's survival.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Final, Literal

import attrs

from modelcheck.suites.vstore.mutants.catalogue import MACHINES, MutantInfo

DEFAULT_REPORT: Final = "mutants-report.json"
#: ``failed`` is an attempt (or the reference) that ended in a mismatch; ``invalid`` one
#: that ended in neither a pass nor a mismatch.
Verdict = Literal["killed", "survived", "invalid", "passed", "failed"]


def default_machines_dir() -> Path:
    """The repository's ``machines/`` (next to the package), else ``./machines``."""
    here = Path(__file__).resolve().parents[2] / "machines"
    return here if here.is_dir() else Path.cwd() / "machines"


@attrs.frozen
class RunConfig:
    """How every subprocess runs: profile, seed, server and where scratch files go."""

    profile: str = "ci"
    seed: int = 1
    machines_dir: Path = attrs.field(factory=default_machines_dir)
    work_dir: Path = Path(".modelcheck/mutants")
    dsn: str | None = None
    pg_bin: Path | None = None
    timeout_s: float = 1800.0
    #: After a kill, delta-debug its trace (``python -m modelcheck minimise``) for at
    #: most this long; 0: do not.
    minimise_budget_s: float = 30.0


@attrs.define
class Attempt:
    """One machine run against one target."""

    machine: str
    verdict: Verdict
    run_s: float
    first_failure_s: float | None = None
    shrunk_steps: int | None = None
    error: str | None = None
    failure: str | None = None
    trace: str | None = None


@attrs.define
class Minimised:
    """What the trace minimiser made of a kill's trace."""

    steps: int | None
    run_s: float
    error: str | None = None


@attrs.define
class Outcome:
    """A mutant's (or the reference's) result over its machines."""

    name: str
    bug_class: str
    verdict: Verdict
    machine: str | None = None
    time_to_kill_s: float | None = None
    run_s: float = 0.0
    shrunk_steps: int | None = None
    trace: str | None = None
    failure: str | None = None
    #: The trace's length after the minimiser removed every step it could.
    minimised_steps: int | None = None
    minimise_s: float | None = None
    attempts: list[Attempt] = attrs.field(factory=list)


def _server_flags(config: RunConfig, prefix: str) -> list[str]:
    """The server options of a subprocess (pytest's ``--modelcheck-dsn``, the CLI's ``--dsn``)."""
    flags = [f"{prefix}dsn={config.dsn}"] if config.dsn else []
    return flags + ([f"{prefix}pg-bin={config.pg_bin}"] if config.pg_bin else [])


def run_machine_file(target: str, machine: str, config: RunConfig) -> Attempt:
    """Run ``machines/test_<machine>.py`` against ``target`` in a scratch directory."""
    scratch = (config.work_dir / f"{target}-{machine}").resolve()
    scratch.mkdir(parents=True, exist_ok=True)
    report = scratch / "report.json"
    report.unlink(missing_ok=True)
    command = [
        sys.executable,
        "-m",
        "pytest",
        str((config.machines_dir / f"test_{machine}.py").resolve()),
        "-q",
        "-x",
        "-p",
        "no:cacheprovider",
        f"--rootdir={scratch}",
        f"--modelcheck-target={target}",
        f"--modelcheck-profile={config.profile}",
        f"--modelcheck-report={report}",
        f"--hypothesis-seed={config.seed}",
        *_server_flags(config, "--modelcheck-"),
    ]
    env = dict(os.environ)
    started = time.perf_counter()
    try:
        done = subprocess.run(
            command,
            cwd=scratch,
            env=env,
            capture_output=True,
            text=True,
            timeout=config.timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired:
        took = time.perf_counter() - started
        return Attempt(machine, "invalid", round(took, 1), error=f"timeout after {took:.0f} s")
    took = round(time.perf_counter() - started, 1)
    (scratch / "pytest.log").write_text(done.stdout + done.stderr)
    return read_attempt(scratch, machine, took, done.returncode)


def read_attempt(scratch: Path, machine: str, took: float, returncode: int) -> Attempt:
    """The attempt a finished run left in its scratch directory: its JSON report, whose
    ``mismatch`` holds the failure as data (trace, shrunk length, time to first failure).

    ``passed`` needs the report to say so and pytest to exit 0; ``failed`` needs a
    mismatch in the report and exit 1. Everything else is ``invalid``."""
    report = scratch / "report.json"
    log = scratch / "pytest.log"
    tail = log.read_text()[-2000:] if log.exists() else ""
    if not report.exists():
        return Attempt(machine, "invalid", took, error=f"pytest exit {returncode}", failure=tail)
    machines: dict[str, Any] = json.loads(report.read_text()).get("machines", {})
    if len(machines) != 1:
        # A machine file runs one machine; none (skipped, not collected) proves nothing.
        return Attempt(
            machine,
            "invalid",
            took,
            error=f"{len(machines)} machines ran, expected 1",
            failure=tail,
        )
    result: dict[str, Any] = next(iter(machines.values()))
    failure = result.get("failure")
    error = result.get("error")
    mismatch: dict[str, Any] = result.get("mismatch") or {}
    first_failure = result.get("first_failure_s")
    outcome = result.get("outcome")
    if outcome == "passed" and returncode == 0 and error is None:
        return Attempt(machine, "passed", took)
    if outcome != "failed" or returncode != 1 or not mismatch:
        # A CoverageError (a rule never ran), a crash, an exception that is not a
        # mismatch: neither a pass nor a kill, so the run proves nothing.
        return Attempt(
            machine,
            "invalid",
            took,
            error=error or f"outcome {outcome!r}, pytest exit {returncode}",
            failure=failure or tail,
        )
    trace = mismatch.get("trace")
    if trace is not None and not Path(trace).is_absolute():
        trace = str(scratch / trace)
    return Attempt(
        machine,
        "failed",
        took,
        first_failure_s=round(first_failure, 2) if first_failure is not None else None,
        shrunk_steps=mismatch.get("step_count"),
        error=error,
        failure=failure,
        trace=trace,
    )


def minimise_trace(target: str, trace: Path, config: RunConfig) -> Minimised:
    """Run the trace minimiser on a kill's trace in a subprocess (its own server, as a
    user would) and read the length of the ``.min.json`` it writes. Hypothesis shrinks
    over the choices it drew; a step it could not delete (its removal shifts later
    draws) goes here, where each candidate is the recorded trace minus some steps."""
    output = trace.with_suffix(".min.json")
    output.unlink(missing_ok=True)
    command = [
        sys.executable,
        "-m",
        "modelcheck",
        "minimise",
        str(trace),
        "-o",
        str(output),
        f"--budget={config.minimise_budget_s:g}s",
        f"--target={target}",
        *_server_flags(config, "--"),
    ]
    started = time.perf_counter()
    try:
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=config.minimise_budget_s + 120,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return Minimised(None, round(time.perf_counter() - started, 1), "timeout")
    took = round(time.perf_counter() - started, 1)
    if done.returncode != 0 or not output.exists():
        return Minimised(None, took, (done.stdout + done.stderr)[-500:])
    steps = json.loads(output.read_text()).get("steps", [])
    return Minimised(len(steps), took)


def run_mutant(info: MutantInfo, config: RunConfig) -> Outcome:
    """Run the mutant's killer machines in order; the first failure kills it."""
    outcome = Outcome(info.name, info.bug_class, "survived")
    for machine in info.killers:
        attempt = run_machine_file(info.name, machine, config)
        outcome.attempts.append(attempt)
        outcome.run_s = round(outcome.run_s + attempt.run_s, 1)
        if attempt.verdict == "failed":
            outcome.verdict = "killed"
            outcome.machine = machine
            outcome.time_to_kill_s = attempt.first_failure_s
            outcome.shrunk_steps = attempt.shrunk_steps
            outcome.trace = attempt.trace
            outcome.failure = attempt.failure
            if attempt.trace is not None and config.minimise_budget_s > 0:
                minimised = minimise_trace(info.name, Path(attempt.trace), config)
                outcome.minimised_steps = minimised.steps
                outcome.minimise_s = minimised.run_s
            return outcome
        if attempt.verdict == "invalid" and outcome.verdict != "invalid":
            # Not survived: a later machine may still kill it, else the run is invalid.
            outcome.verdict = "invalid"
            outcome.machine = machine
            outcome.failure = attempt.error
    return outcome


def run_reference(config: RunConfig, machines: Sequence[str] = MACHINES) -> Outcome:
    """Run every machine against the correct reference; each must pass."""
    outcome = Outcome("reference", "-", "passed")
    for machine in machines:
        attempt = run_machine_file("reference", machine, config)
        outcome.attempts.append(attempt)
        outcome.run_s = round(outcome.run_s + attempt.run_s, 1)
        if attempt.verdict == "failed":
            # A real false alarm outranks any invalid run before it.
            outcome.verdict = "failed"
            outcome.machine = machine
            outcome.failure = attempt.failure or attempt.error
        elif attempt.verdict != "passed" and outcome.verdict == "passed":
            outcome.verdict = "invalid"
            outcome.machine = machine
            outcome.failure = attempt.error
    return outcome


def run_all(
    mutants: Iterable[MutantInfo],
    config: RunConfig,
    *,
    jobs: int = 2,
    reference: bool = True,
    progress: Callable[[Outcome], None] = lambda outcome: None,
) -> list[Outcome]:
    """Every mutant (and the reference), ``jobs`` subprocesses at a time, in catalogue order."""

    def one(item: MutantInfo | None) -> Outcome:
        outcome = run_reference(config) if item is None else run_mutant(item, config)
        progress(outcome)
        return outcome

    items: list[MutantInfo | None] = [*mutants, *([None] if reference else [])]
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        return list(pool.map(one, items))


# ------------------------------------------------------------------------ reporting


def summary(outcomes: Sequence[Outcome]) -> dict[str, Any]:
    """Counts plus median and worst time-to-kill and shrunk length over the kills."""
    mutants = [o for o in outcomes if o.name != "reference"]
    killed = [o for o in mutants if o.verdict == "killed"]
    times = [o.time_to_kill_s for o in killed if o.time_to_kill_s is not None]
    steps = [o.shrunk_steps for o in killed if o.shrunk_steps is not None]
    minimised = [o.minimised_steps for o in killed if o.minimised_steps is not None]
    reference = next((o.verdict for o in outcomes if o.name == "reference"), None)
    return {
        "mutants": len(mutants),
        "killed": len(killed),
        "survived": [o.name for o in mutants if o.verdict == "survived"],
        "invalid": [o.name for o in mutants if o.verdict == "invalid"],
        "reference": reference,
        "median_time_to_kill_s": statistics.median(times) if times else None,
        "worst_time_to_kill_s": max(times) if times else None,
        "median_shrunk_steps": statistics.median(steps) if steps else None,
        "worst_shrunk_steps": max(steps) if steps else None,
        "median_minimised_steps": statistics.median(minimised) if minimised else None,
        "worst_minimised_steps": max(minimised) if minimised else None,
    }


def _cell(value: object) -> str:
    return "-" if value is None else str(value)


def render_table(outcomes: Sequence[Outcome]) -> str:
    """A Markdown table: one row per mutant (and the reference)."""
    lines = [
        "| mutant | bug class | result | machine | time to kill (s) | shrunk steps "
        "| minimised steps | run (s) | trace |",
        "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for o in outcomes:
        lines.append(
            f"| {o.name} | {o.bug_class} | {o.verdict} | {_cell(o.machine)} "
            f"| {_cell(o.time_to_kill_s)} | {_cell(o.shrunk_steps)} "
            f"| {_cell(o.minimised_steps)} | {o.run_s} "
            f"| {_cell(o.trace)} |"
        )
    return "\n".join(lines)


def write_report(outcomes: Sequence[Outcome], path: Path, config: RunConfig) -> tuple[Path, Path]:
    """Write the JSON report and a Markdown table next to it (``.md``)."""
    data = {
        "profile": config.profile,
        "seed": config.seed,
        "summary": summary(outcomes),
        "results": [attrs.asdict(o) for o in outcomes],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")
    table = path.with_suffix(".md")
    stats = summary(outcomes)
    table.write_text(
        f"# Mutants ({config.profile} profile, seed {config.seed})\n\n"
        f"{stats['killed']}/{stats['mutants']} killed; invalid: {len(stats['invalid'])}; "
        f"reference: {stats['reference']}; "
        f"time to kill median {stats['median_time_to_kill_s']} s, worst "
        f"{stats['worst_time_to_kill_s']} s; shrunk steps median "
        f"{stats['median_shrunk_steps']}, worst {stats['worst_shrunk_steps']}; minimised "
        f"median {stats['median_minimised_steps']}, worst {stats['worst_minimised_steps']}"
        "\n\n"
        f"{render_table(outcomes)}\n"
    )
    return path, table
