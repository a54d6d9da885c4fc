"""Synthetic inputs for the page tests: a concurrency trace like the issue's and a
stress run with an anomaly, so the pages are tested (and screenshotted) without a
database."""

from __future__ import annotations

from typing import Any

from modelcheck._traces import trace as _trace
from modelcheck.suites.vstore.snapshot import Snapshot
from modelcheck.suites.vstore.stress.checker import Anomaly, CheckResult, PartitionResult
from modelcheck.suites.vstore.stress.history import Call
from modelcheck.suites.vstore.stress.runner import RunResult, StressConfig

LONG = "a commit message " * 30


def step(number: int, connection: int, operation: str, *args: Any, **fields: Any) -> dict[str, Any]:
    """One trace step as :func:`modelcheck._traces.trace.build` writes it."""
    data = {
        "number": number,
        "connection": connection,
        "operation": operation,
        "transaction": False,
        "args": [_trace.encode(a) for a in args],
        "reads_only": operation in ("verify", "log"),
        "sql": f"SELECT * FROM vstore.{operation}(…)",
        "outcome": "ok",
        "sqlstate": None,
        "kind": None,
        "pending": False,
        "blocked": False,
        "aborted": False,
    }
    return {**data, **fields}


def concurrency_trace(verifies: int = 11) -> dict[str, Any]:
    """A concurrency kill like the issue's: many no-op verifies, then the failure."""
    steps = [step(1, 0, "create_branch", "feat", "main")]
    steps += [step(n, n % 2, "verify") for n in range(2, 2 + verifies)]
    n = 2 + verifies
    steps += [
        step(n, 1, "commit", "feat", LONG, outcome="blocked, then ok", blocked=True),
        step(n + 1, 0, "commit", "feat", "x", outcome="ok"),
    ]
    events = [{"event": "begin", "connection": 1, "level": "read committed", "after": 1}]
    events += [{"event": "step", "number": s["number"]} for s in steps]
    cut = f"  commits['c1'].message: model={LONG[:100]!r}… db='x'"
    whole = f"  commits['c1'].message: model={LONG!r} db='x'"
    return {
        "format": 1,
        "seed": 1,
        "profile": "ci",
        "target": {"name": "mutant-commit-no-lock", "spec": "mutant-commit-no-lock"},
        "postgres": "16.4",
        "machine": {
            "module": "test_concurrency",
            "qualname": "ConcurrencyMachine",
            "file": "machines/test_concurrency.py",
            "interleaved": True,
        },
        "connections": 4,
        "steps": steps,
        "events": events,
        "timeline": [[0, 1, "BEGIN READ COMMITTED"]],
        "failure": {
            "heading": "state differs",
            "where": f"after step {n + 1}: commit",
            "step": n + 1,
            "detail": cut,
            "full_detail": whole,
            "message": "modelcheck: state differs …",
        },
    }


def _commit(index: int, worker: int, start: float, end: float, **outcome: Any) -> Call:
    status = "ok" if "result" in outcome else "error"
    return Call(
        index, worker, "commit", ("g0_b1", f"w{worker} n{index}"), start, end, status, **outcome
    )


def stress_run() -> tuple[RunResult, CheckResult]:
    ok = {"result": {"pk": 3, "id": "00000000-0000-0000-0000-000000000003", "identifier": "c1"}}
    history = [
        # Recorded out of start order, as workers finish at different times.
        _commit(20, 1, 10.30, 10.34, **ok),
        _commit(11, 0, 10.10, 10.20, **ok),
        _commit(21, 2, 10.31, 10.33, sqlstate="40001", kind="serialization_failure"),
        _commit(18, 0, 10.25, 10.29, sqlstate="23505", kind="duplicate"),
        Call(19, 2, "log", ("g0_b1",), 10.26, 10.27, "indeterminate"),
        Call(30, 3, "log", ("g1",), 10.0, 10.05, "ok", result=["c0"]),
    ]
    anomaly = Anomaly(
        "no_serial_order",
        "no serial order of the 5 calls on {branch:g0_b1} respects real time …",
        calls=(20, 11),
        partition=(11, 18, 19, 20, 21),
    )
    check = CheckResult(
        "anomaly",
        [
            PartitionResult(("branch:g0_b1",), (11, 18, 19, 20, 21), "anomaly", 12),
            PartitionResult(("branch:g1",), (30,), "pass", 1),
        ],
        [anomaly, Anomaly("fork", "branch 'g0_b1' forked: commits ['c1', 'c2']")],
        [],
        0.2,
        5,
    )
    config = StressConfig(workers=4, duration=1.0, seed=3)
    return RunResult(config, "unlocked_commit", [], history, Snapshot({}, {}, {}, {}), 1.0), check
