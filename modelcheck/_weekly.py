"""Long runs: every machine under fresh random seeds until a time budget is spent.

Each run is a plain ``pytest <machine file> --hypothesis-seed=<seed>`` in a child
process (so machines stay ordinary pytest tests that pytest-xdist can run unchanged;
HypoFuzz runs their fuzz form, ``modelcheck._fuzz``). Runs are numbered round by
round over the sorted machine files; run ``k`` belongs to shard ``k % n + 1`` of
``n``, so CI matrix jobs split the work without talking to each other. Failures leave
traces (``--modelcheck-traces``) and their examples in a Hypothesis example database
directory shared between runs.
"""

from __future__ import annotations

import json
import math
import random
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Final

import attrs

from modelcheck.errors import ConfigError

DEFAULT_TRACES: Final = Path(".modelcheck") / "traces"
DEFAULT_EXAMPLE_DB: Final = Path(".modelcheck") / "examples"
#: A run cut off by the budget gets this long to stop cleanly after SIGINT.
GRACE_S: Final = 15.0

_UNITS: Final = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """Seconds in ``"90"``, ``"60s"``, ``"30m"``, ``"2h"`` or ``"1h30m"``.

    >>> parse_duration("30m"), parse_duration("1h30m"), parse_duration("60s")
    (1800.0, 5400.0, 60.0)
    """
    compact = re.sub(r"\s+", "", text.lower())
    if not re.fullmatch(r"(\d+(\.\d+)?[smhd]?)+", compact):
        raise ConfigError(
            f"Cannot read the duration {text!r}. To fix this, write it as seconds or with a "
            "unit: 90, 60s, 30m, 2h, 1h30m."
        )
    parts = re.findall(r"(\d+(?:\.\d+)?)([smhd]?)", compact)
    seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    if seconds <= 0:
        raise ConfigError(f"The duration {text!r} is not positive. To fix this, give e.g. 30m.")
    return seconds


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/n"`` (1-based) as ``(i, n)``.

    >>> parse_shard("2/4")
    (2, 4)
    """
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if match is None or not 1 <= int(match.group(1)) <= int(match.group(2)):
        raise ConfigError(
            f"Cannot read the shard {text!r}. To fix this, write i/n with 1 <= i <= n, "
            "e.g. --shard 1/4 for the first of four CI jobs."
        )
    return int(match.group(1)), int(match.group(2))


def machine_files(directory: Path) -> list[Path]:
    """The machine test files of a directory, in a fixed order."""
    files = sorted(directory.glob("test_*.py"))
    if not files:
        raise ConfigError(
            f"No machine files (test_*.py) in {str(directory)!r}. To fix this, pass "
            "--machines-dir pointing at your machines/ directory."
        )
    return files


def schedule(files: Sequence[Path], shard: tuple[int, int]) -> Iterator[tuple[int, Path]]:
    """``(run number, file)`` of this shard, forever: round by round over the files."""
    index, count = shard
    number = 0
    while True:
        for file in files:
            if number % count == index - 1:
                yield number, file
            number += 1


@attrs.frozen
class WeeklyConfig:
    duration_s: float
    shard: tuple[int, int] = (1, 1)
    machines_dir: Path = Path("machines")
    traces: Path = DEFAULT_TRACES
    example_db: Path = DEFAULT_EXAMPLE_DB
    profile: str = "weekly"
    target: str | None = None
    report: Path | None = None
    pytest_args: tuple[str, ...] = ()


@attrs.define
class Run:
    number: int
    machine: str
    seed: int
    outcome: str = "running"
    duration_s: float = 0.0
    returncode: int | None = None

    def as_json(self) -> dict[str, Any]:
        return attrs.asdict(self)


def command(config: WeeklyConfig, file: Path, seed: int) -> list[str]:
    """The pytest command line of one run."""
    argv = [
        sys.executable,
        "-m",
        "pytest",
        str(file),
        "-q",
        "-p",
        "no:cacheprovider",
        "-p",
        "modelcheck._traces.plugin",
        f"--hypothesis-seed={seed}",
        f"--modelcheck-profile={config.profile}",
        f"--modelcheck-traces={config.traces}",
        f"--modelcheck-example-db={config.example_db}",
    ]
    if config.target:
        argv.append(f"--modelcheck-target={config.target}")
    return [*argv, *config.pytest_args]


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Interrupt a run cut off by the budget, so its fixtures stop its cluster."""
    process.send_signal(signal.SIGINT)
    try:
        process.wait(GRACE_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def time_slice(duration_s: float, remaining_s: float, files: int, shard: tuple[int, int]) -> float:
    """How long one run may take: the budget spread over one round of the shard's
    machines, so a short budget still reaches every machine (never past the end)."""
    per_round = max(1, math.ceil(files / shard[1]))
    return max(0.0, min(remaining_s, duration_s / per_round))


def run_weekly(config: WeeklyConfig, *, out: Any = None) -> list[Run]:
    """Run the shard's machines under fresh seeds until the budget is spent."""
    out = out or sys.stdout
    files = machine_files(config.machines_dir)
    config.traces.mkdir(parents=True, exist_ok=True)
    config.example_db.mkdir(parents=True, exist_ok=True)
    seeds = random.SystemRandom()
    deadline = time.monotonic() + config.duration_s
    runs: list[Run] = []
    index, count = config.shard
    print(
        f"modelcheck weekly: shard {index}/{count}, {config.duration_s:.0f} s budget, "
        f"profile {config.profile}, machines {[f.name for f in files]}",
        file=out,
        flush=True,
    )
    for number, file in schedule(files, config.shard):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        run = Run(number, file.stem, seeds.randrange(2**32))
        runs.append(run)
        print(f"run {number}: {file.name} seed={run.seed}", file=out, flush=True)
        started = time.monotonic()
        process = subprocess.Popen(command(config, file, run.seed))
        budget = time_slice(config.duration_s, remaining, len(files), config.shard)
        try:
            run.returncode = process.wait(budget)
            run.outcome = {0: "passed", 1: "failed"}.get(run.returncode, "error")
        except subprocess.TimeoutExpired:
            _stop(process)
            run.outcome = "interrupted"  # out of budget: neither passed nor failed
        run.duration_s = round(time.monotonic() - started, 3)
        print(
            f"run {number}: {file.name} seed={run.seed} {run.outcome} ({run.duration_s:.1f} s)"
            + (
                f"; reproduce: pytest {file} --hypothesis-seed={run.seed} "
                f"--modelcheck-profile={config.profile}"
                if run.outcome != "passed"
                else ""
            ),
            file=out,
            flush=True,
        )
    failed = [r for r in runs if r.outcome in ("failed", "error")]
    print(
        f"modelcheck weekly: {len(runs)} runs, {len(failed)} failed; traces in {config.traces}",
        file=out,
        flush=True,
    )
    if config.report is not None:
        report = {
            "shard": list(config.shard),
            "duration_s": config.duration_s,
            "profile": config.profile,
            "runs": [r.as_json() for r in runs],
        }
        config.report.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return runs


def exit_code(runs: Sequence[Run]) -> int:
    return 1 if any(r.outcome in ("failed", "error") for r in runs) else 0


__all__ = ["WeeklyConfig", "parse_duration", "parse_shard", "run_weekly"]
