"""Soak: every machine under fresh seeds, each seed twice (quiet, then under a CPU hog).

A correct target must pass every run (a failure is a false alarm of ours), no run may
crash, and the same seed must give the same outcomes with and without load: whatever
a step's outcome depends on is decided by Postgres, never by how fast this process
ran. The outcome counts of each machine's JSON report (results, errors by kind,
blocked statements, aborts by SQLSTATE, commits) are compared run against run.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final, TextIO

import attrs

from modelcheck._weekly import machine_files
from modelcheck.machine import TRAIL_LOG_ENV

#: One machine file's run, quiet or loaded, longer than this is a crash (a hang).
RUN_TIMEOUT_S: Final = 900
#: The busy loop each hog process runs; it stops by itself after ``HOG_MAX_S``.
HOG_MAX_S: Final = 3600
_HOG: Final = "import time\nend = time.monotonic() + {limit}\nwhile time.monotonic() < end: pass\n"


@attrs.frozen
class SoakConfig:
    duration_s: float
    machines_dir: Path = Path("machines")
    profile: str = "dev"
    target: str | None = None
    hogs: int = attrs.field(factory=lambda: os.cpu_count() or 2)
    report: Path | None = None
    #: Where both trails of a seed whose runs diverged are kept, as text.
    trails_dir: Path = Path(".modelcheck/soak")


@attrs.define
class SoakResult:
    runs: int = 0
    examples: int = 0
    steps: int = 0
    crashes: list[str] = attrs.field(factory=list)
    false_alarms: list[str] = attrs.field(factory=list)
    divergences: list[str] = attrs.field(factory=list)
    #: Per machine, the rule that ran least often in any one run, and how often: the
    #: margin before a run would fail coverage (a rule that never ran).
    rarest: dict[str, tuple[str, int]] = attrs.field(factory=dict)

    def note_rules(self, machine: str, rules: dict[str, int]) -> None:
        """Keep the rarest rule of this run if it is rarer than any seen before."""
        if not rules:
            return
        rule, count = min(rules.items(), key=lambda item: (item[1], item[0]))
        if machine not in self.rarest or count < self.rarest[machine][1]:
            self.rarest[machine] = (rule, count)

    def summary(self) -> str:
        return (
            f"{self.runs} runs, {self.examples} examples, {self.steps} checked steps; "
            f"crashes {len(self.crashes)}, false alarms {len(self.false_alarms)}, "
            f"divergent outcomes {len(self.divergences)}"
        )


@contextlib.contextmanager
def cpu_hog(processes: int) -> Iterator[list[subprocess.Popen[bytes]]]:
    """``processes`` busy loops for the duration of the block; always stopped."""
    code = _HOG.format(limit=HOG_MAX_S)
    hogs: list[subprocess.Popen[bytes]] = []
    try:
        for _ in range(processes):
            hogs.append(subprocess.Popen([sys.executable, "-c", code]))
        yield hogs
    finally:
        for hog in hogs:
            hog.kill()
        for hog in hogs:
            hog.wait()


def run_file(
    config: SoakConfig, file: Path, seed: int, trails: Path | None = None
) -> tuple[int, dict[str, Any]]:
    """One pytest run of a machine file; its exit code and its report's machines.
    ``trails``: a directory where each machine writes its trail as text."""
    with tempfile.TemporaryDirectory(prefix="modelcheck-soak-") as scratch:
        report = Path(scratch) / "report.json"
        argv = [
            sys.executable,
            "-m",
            "pytest",
            str(file),
            "-q",
            "-p",
            "no:cacheprovider",
            f"--hypothesis-seed={seed}",
            f"--modelcheck-profile={config.profile}",
            f"--modelcheck-report={report}",
            f"--modelcheck-traces={scratch}/traces",
            # Each run its own example database: a shared one would replay the first
            # run's examples in the second and make their counts differ.
            f"--modelcheck-example-db={scratch}/examples",
        ]
        if config.target:
            argv.append(f"--modelcheck-target={config.target}")
        env = dict(os.environ)
        if trails is not None:
            env[TRAIL_LOG_ENV] = str(trails)
        try:
            done = subprocess.run(
                argv, capture_output=True, text=True, check=False, timeout=RUN_TIMEOUT_S, env=env
            )
        except subprocess.TimeoutExpired:
            return -1, {}  # a hung run is a crash, and the soak goes on
        machines = json.loads(report.read_text())["machines"] if report.exists() else {}
    return done.returncode, machines


def first_difference(kept: Path) -> str:
    """Where the quiet and the loaded trail of each machine first part, as text, with
    the calls just before it (description lines, ``  # ...``, are context only: they
    may hold values the server chose, which differ from run to run)."""
    found = []
    for quiet in sorted((kept / "quiet").glob("*.trail")):
        loaded = kept / "loaded" / quiet.name
        a = _trail_lines(quiet)
        b = _trail_lines(loaded) if loaded.exists() else []
        for index, (mine, theirs) in enumerate(itertools.zip_longest(a, b)):
            if (mine and mine[1]) != (theirs and theirs[1]):
                calls = " / ".join(mine[2][-3:]) if mine else ""
                found.append(
                    f"\n    {quiet.stem}: first differs at step line {index + 1} "
                    f"(both trails kept in {kept}); calls before it: {calls}"
                    f"\n      quiet:  {mine and mine[1]}\n      loaded: {theirs and theirs[1]}"
                )
                break
    return "".join(found)


def _trail_lines(path: Path) -> list[tuple[int, str, list[str]]]:
    """(line number, step line, the descriptions seen so far) for each step line."""
    lines: list[tuple[int, str, list[str]]] = []
    calls: list[str] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.startswith("  # "):
            calls.append(line[4:])
        else:
            lines.append((number, line, list(calls)))
    return lines


def _outcomes(result: dict[str, Any]) -> dict[str, Any]:
    """What must not depend on load: the verdict, the steps run, every outcome count and
    the trail (every rule and outcome in order, hashed: the same outcomes step by step)."""
    keys = ("outcome", "examples", "steps", "rules", "outcomes", "trail")
    return {k: result.get(k) for k in keys}


def compare(label: str, quiet: dict[str, Any], loaded: dict[str, Any]) -> list[str]:
    """One line per machine whose outcomes differ between the two runs of a seed."""
    lines = []
    for name in sorted(set(quiet) | set(loaded)):
        a, b = _outcomes(quiet.get(name, {})), _outcomes(loaded.get(name, {}))
        if a != b:
            keys = sorted(k for k in a if a[k] != b[k])
            detail = {k: (a[k], b[k]) for k in keys if k != "outcomes"}
            mine, theirs = a["outcomes"] or {}, b["outcomes"] or {}
            counts = {
                k: (mine.get(k), theirs.get(k))
                for k in sorted(set(mine) | set(theirs))
                if mine.get(k) != theirs.get(k)
            }
            lines.append(f"{label} {name}: quiet vs loaded {detail} {counts}")
    return lines


def run_soak(config: SoakConfig, *, out: TextIO | None = None) -> SoakResult:
    """Machines round by round under fresh seeds until the budget is spent."""
    out = out or sys.stdout
    files = machine_files(config.machines_dir)
    deadline = time.monotonic() + config.duration_s
    seeds = random.SystemRandom()
    result = SoakResult()
    print(f"modelcheck soak: {config.duration_s:.0f} s, {config.hogs} hog(s)", file=out)
    while time.monotonic() < deadline:
        for file in files:
            if time.monotonic() >= deadline:
                break
            seed = seeds.randrange(2**32)
            label = f"{file.stem} seed={seed}"
            kept = config.trails_dir / label.replace(" ", "-").replace("=", "-")
            code, quiet = run_file(config, file, seed, kept / "quiet")
            with cpu_hog(config.hogs):
                loaded_code, loaded = run_file(config, file, seed, kept / "loaded")
            result.runs += 2
            for run_code, machines, how in (
                (code, quiet, "quiet"),
                (loaded_code, loaded, "loaded"),
            ):
                if run_code not in (0, 1, 5) or (run_code == 1 and not machines):
                    result.crashes.append(f"{label} ({how}): pytest exit {run_code}")
                for name, machine in machines.items():
                    result.examples += int(machine.get("examples") or 0)
                    result.steps += int(machine.get("steps") or 0)
                    result.note_rules(name, machine.get("rules") or {})
                    if machine.get("outcome") != "passed":
                        error = machine.get("error")
                        result.false_alarms.append(f"{label} {name} ({how}): {error}")
            parted = compare(label, quiet, loaded)
            result.divergences += [line + first_difference(kept) for line in parted]
            if not parted:
                shutil.rmtree(kept, ignore_errors=True)
            print(f"{label}: {result.summary()}", file=out, flush=True)
    print(f"modelcheck soak: {result.summary()}", file=out, flush=True)
    for line in [*result.crashes, *result.false_alarms, *result.divergences]:
        print(f"  {line}", file=out)
    for machine, (rule, count) in sorted(result.rarest.items()):
        print(f"  coverage margin: {machine}: rarest rule {rule}, {count} runs", file=out)
    if config.report is not None:
        config.report.write_text(json.dumps(attrs.asdict(result), indent=2) + "\n")
    return result


__all__ = ["SoakConfig", "SoakResult", "compare", "cpu_hog", "run_soak"]
