"""Failure traces end to end: a buggy target writes a trace, replay shows the identical
diff, the generated regression test fails on the bug and passes once it is fixed, the
HTML page holds every step, and the weekly driver keeps to its budget and shard.

The slow part runs the real commit machine once against a target whose ``vstore.commit``
stores the message with a dot appended (every commit is wrong, so the first example
fails and shrinks fast); the target lives in a module written to ``tmp_path`` so the
test can "fix the bug" by rewriting that module.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelcheck._cli import main
from modelcheck._postgres.server import EmbeddedServer, ExternalServer
from modelcheck._traces import trace as _trace
from modelcheck._traces.minimise import ddmin
from modelcheck._traces.replay import check_target, replay
from modelcheck._traces.show import render, step_label
from modelcheck._weekly import (
    machine_files,
    parse_duration,
    parse_shard,
    schedule,
    time_slice,
)
from modelcheck.errors import ConfigError, TraceError

REPO = Path(__file__).resolve().parent.parent
MACHINE = REPO / "machines" / "test_commits.py"

_BUGGY = '''
from modelcheck.suites.vstore.reference.target import ReferenceTarget

DOT = """
CREATE OR REPLACE FUNCTION vstore.commit(branch text, message text)
RETURNS vstore.commit_result
LANGUAGE plpgsql AS $$
DECLARE
    b vstore.branches;
    c vstore.commits;
BEGIN
    PERFORM vstore.check_message(message);
    b := vstore.lock_active_branch(branch);
    c := vstore.add_commit(b, ARRAY[b.head_pk], message || '.');
    RETURN (c.pk, c.id, c.identifier, c.version, c.schema_hash)::vstore.commit_result;
END
$$;
"""


class DotTarget(ReferenceTarget):
    name = "dot_appended"
    extra_sql = {extra}
'''


def write_target(folder: Path, *, buggy: bool) -> None:
    (folder / "dot_target.py").write_text(_BUGGY.format(extra="(DOT,)" if buggy else "()"))
    for cached in (folder / "__pycache__").glob("dot_target*"):
        cached.unlink()


def run(argv: list[str], cwd: Path, folder: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": f"{folder}{os.pathsep}{REPO}"}
    env.pop("MODELCHECK_TARGET", None)
    env.pop("PYTEST_ADDOPTS", None)
    env.pop("NOX_CURRENT_SESSION", None)  # the hint differs under nox (tested below)
    return subprocess.run(
        [sys.executable, *argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


# ---------------------------------------------------------------------- fast tests

values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text()
    | st.binary(max_size=8)
    | st.uuids(),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=3) | st.integers(), inner, max_size=3)
        | st.frozensets(st.integers() | st.text(max_size=3), max_size=3)
    ),
    max_leaves=10,
)


def _same(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return repr(a) == repr(b)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    return bool(a == b)


@given(values)
def test_arguments_round_trip_exactly(value: Any) -> None:
    encoded = json.loads(json.dumps(_trace.encode(value)))
    assert _same(_trace.decode(encoded), value)


def test_uuid_and_tuple_are_tagged() -> None:
    key = uuid.UUID(int=7)
    assert _trace.encode((key, "a")) == {"$tuple": [{"$uuid": str(key)}, "a"]}


def test_durations_and_shards_parse() -> None:
    assert parse_duration("60s") == 60
    assert parse_duration("30m") == 1800
    assert parse_duration("1h30m") == 5400
    assert parse_shard("1/2") == (1, 2)
    for bad in ("", "30x", "m", "0s"):
        with pytest.raises(ConfigError):
            parse_duration(bad)
    for bad in ("0/2", "3/2", "1-2"):
        with pytest.raises(ConfigError):
            parse_shard(bad)


def test_a_short_budget_is_spread_over_every_machine_of_the_shard() -> None:
    # 40 s over 7 machines used to go to the first machine alone.
    assert time_slice(40, 40, 7, (1, 1)) == pytest.approx(40 / 7)
    assert time_slice(40, 40, 7, (1, 2)) == pytest.approx(10)  # 4 machines per round
    assert time_slice(40, 3, 7, (1, 1)) == 3  # never past the end of the budget
    assert time_slice(40, -1, 7, (1, 1)) == 0


def test_shards_split_runs_without_overlap() -> None:
    files = [Path(f"test_{n}.py") for n in "abc"]
    first = [(n, f.stem) for (n, f), _ in zip(schedule(files, (1, 2)), range(4), strict=False)]
    second = [(n, f.stem) for (n, f), _ in zip(schedule(files, (2, 2)), range(4), strict=False)]
    assert first == [(0, "test_a"), (2, "test_c"), (4, "test_b"), (6, "test_a")]
    assert second == [(1, "test_b"), (3, "test_a"), (5, "test_c"), (7, "test_b")]


def _trace_like(**changes: Any) -> dict[str, Any]:
    trace: dict[str, Any] = {
        "format": 1,
        "seed": 1,
        "profile": "dev",
        "target": {"name": "reference", "spec": "reference"},
        "postgres": "16",
        "machine": {"module": "x", "qualname": "X", "file": None, "interleaved": False},
        "connections": 2,
        "steps": [],
        "events": [],
        "timeline": [],
        "failure": {"heading": "h", "where": "w", "step": None, "detail": "d", "message": ""},
    }
    trace.update(changes)
    return trace


def test_an_older_format_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "old.json"
    path.write_text(json.dumps(_trace_like(format=0)))
    with pytest.raises(TraceError, match="format 0"):
        _trace.load(path)
    assert main(["replay", str(path)]) == 2


def test_a_different_target_is_refused() -> None:
    trace = _trace_like(target={"name": "mine", "spec": "reference"})
    with pytest.raises(TraceError, match="recorded against target 'mine'"):
        check_target(trace)


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        for name, value in attrs:
            assert not (name in ("src", "href") and value and "//" in value), value

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_html_lanes_for_an_interleaved_trace() -> None:
    step = {
        "number": 1,
        "connection": 1,
        "operation": "commit",
        "transaction": False,
        "args": ["main", "<m>"],
        "sql": None,
        "outcome": "blocked",
        "sqlstate": None,
        "kind": None,
        "pending": True,
        "blocked": True,
        "aborted": False,
    }
    trace = _trace_like(
        steps=[step],
        events=[
            {"event": "begin", "connection": 1, "level": "serializable", "after": 0},
            {"event": "step", "number": 1},
        ],
    )
    page = render(trace)
    parser = _Text()
    parser.feed(page)
    text = "".join(parser.text)
    assert "connection c1" in text
    assert "BEGIN SERIALIZABLE" in text
    assert step_label(step) in text
    assert 'class="blocked' in page


def _step(number: int, connection: int, operation: str, *args: Any) -> dict[str, Any]:
    return {
        "number": number,
        "connection": connection,
        "operation": operation,
        "transaction": operation in ("commit", "rollback") and not args,
        "args": [_trace.encode(a) for a in args],
        "sql": None,
        "outcome": "ok",
        "sqlstate": None,
        "kind": None,
        "pending": False,
        "blocked": False,
        "aborted": False,
    }


@pytest.mark.slow
@pytest.mark.postgres
def test_an_interleaved_trace_replays_its_transactions(
    modelcheck_server: EmbeddedServer | ExternalServer,
) -> None:
    """Two connections, open transactions, commits and a rollback: on the correct
    reference target every recorded step runs again and nothing fails (the same steps
    on a buggy commit fail at step 4, where c1's transaction commits)."""
    steps = [
        _step(1, 0, "create_branch", "feat", "main"),
        _step(2, 1, "commit", "main", "from c1"),
        _step(3, 0, "commit"),
        _step(4, 1, "commit"),
        _step(5, 0, "delete_branch", "feat"),
        _step(6, 0, "rollback"),
        _step(7, 1, "log", "feat"),
    ]
    trace = _trace_like(
        machine={
            "module": "test_concurrency",
            "qualname": "ConcurrencyMachine",
            "file": str(REPO / "machines" / "test_concurrency.py"),
            "interleaved": True,
        },
        steps=steps,
        events=[
            {"event": "begin", "connection": 0, "level": "serializable", "after": 0},
            {"event": "step", "number": 1},
            {"event": "begin", "connection": 1, "level": "read committed", "after": 1},
            *({"event": "step", "number": n} for n in (2, 3, 4)),
            {"event": "begin", "connection": 0, "level": "repeatable read", "after": 4},
            *({"event": "step", "number": n} for n in (5, 6, 7)),
        ],
    )
    result = replay(trace, modelcheck_server)
    assert result.passed, result.report()
    assert result.steps_run == 7
    assert result.exit_code == 0


def test_the_replay_hint_is_a_command_that_works_where_it_is_printed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("NOX_CURRENT_SESSION", raising=False)
    assert _trace.replay_command("t.json") == "python -m modelcheck replay t.json"
    monkeypatch.setenv("NOX_CURRENT_SESSION", "stateful")
    assert _trace.replay_command("t.json") == "nox -s reproduce -- t.json"
    assert _trace.replay_lines(Path("t.json")).endswith("replay: nox -s reproduce -- t.json")


# ---------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def failing(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Run the commit machine on the buggy target once: (working dir, trace file)."""
    folder = tmp_path_factory.mktemp("traces")
    write_target(folder, buggy=True)
    result = run(
        [
            "-m",
            "pytest",
            str(MACHINE),
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "modelcheck._traces.plugin",
            "--modelcheck-target=dot_target:DotTarget",
            f"--modelcheck-traces={folder / 'out'}",
            "--hypothesis-seed=7",
        ],
        folder,
        folder,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    traces = list((folder / "out").glob("*.json"))
    assert len(traces) == 1, result.stdout
    assert f"trace: {traces[0]}" in result.stdout
    assert f"replay: python -m modelcheck replay {traces[0]}" in result.stdout
    return folder, traces[0]


@pytest.mark.slow
@pytest.mark.postgres
def test_a_buggy_target_writes_a_complete_trace(failing: tuple[Path, Path]) -> None:
    _, path = failing
    trace = _trace.load(path)
    assert trace["format"] == 1
    assert trace["seed"] == 7
    assert trace["profile"] == "dev"
    assert trace["target"] == {"name": "dot_appended", "spec": "dot_target:DotTarget"}
    assert trace["postgres"]
    assert trace["machine"]["qualname"] == "CommitMachine"
    assert trace["machine"]["interleaved"] is False
    # Shrunk: the last write is Hypothesis' minimal example, a single commit.
    assert [s["operation"] for s in trace["steps"]] == ["commit"]
    step = trace["steps"][0]
    assert step["sql"].startswith('SELECT * FROM vstore."commit"(')
    assert trace["failure"]["detail"] in trace["failure"]["message"]
    assert "commit identifier" in trace["failure"]["detail"]


@pytest.mark.slow
@pytest.mark.postgres
def test_minimise_drops_every_step_the_failure_does_not_need(
    failing: tuple[Path, Path],
) -> None:
    folder, path = failing
    trace = _trace.load(path)
    (failing_step,) = trace["steps"]
    noise = [("log", ["main"]), ("verify", []), ("log", ["main"]), ("verify", [])]
    steps = [
        {**failing_step, "number": n, "operation": op, "args": args, "sql": None}
        for n, (op, args) in enumerate(noise, 1)
    ]
    steps.append({**failing_step, "number": len(noise) + 1})
    trace["steps"] = steps
    trace["events"] = [{"event": "step", "number": s["number"]} for s in steps]
    noisy = folder / "noisy.json"
    noisy.write_text(json.dumps(trace))

    done = run(["-m", "modelcheck", "minimise", str(noisy), "--budget", "120s"], folder, folder)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("5 -> 1 steps (1-minimal;"), done.stdout
    smaller = _trace.load(folder / "noisy.min.json")
    assert [s["operation"] for s in smaller["steps"]] == ["commit"]
    replayed = run(["-m", "modelcheck", "replay", str(folder / "noisy.min.json")], folder, folder)
    assert replayed.returncode == 1, replayed.stdout + replayed.stderr
    assert "REPRODUCED" in replayed.stdout


def test_ddmin_keeps_exactly_what_the_failure_needs() -> None:
    needed = {3, 11, 12}
    tried: list[list[int]] = []

    def fails(units: list[int]) -> bool:
        tried.append(units)
        return needed <= set(units)

    kept, complete = ddmin(list(range(20)), fails, lambda: False)
    assert kept == [3, 11, 12]
    assert complete
    assert len(tried) < 60  # far fewer than the 2**20 subsets
    stop_after = len(tried) + 5  # a budget that runs out early: the best so far
    partial, complete = ddmin(list(range(20)), fails, lambda: len(tried) > stop_after)
    assert not complete
    assert needed <= set(partial)


@pytest.mark.slow
@pytest.mark.postgres
def test_replay_regress_and_show(failing: tuple[Path, Path]) -> None:
    folder, path = failing
    trace = _trace.load(path)

    replayed = run(["-m", "modelcheck", "replay", str(path)], folder, folder)
    assert replayed.returncode == 1, replayed.stdout + replayed.stderr
    assert "REPRODUCED" in replayed.stdout
    assert trace["failure"]["detail"] in replayed.stdout  # the identical diff

    page = folder / "page.html"
    assert main(["show", str(path), "-o", str(page)]) == 0
    parser = _Text()
    parser.feed(page.read_text())
    text = "".join(parser.text)
    assert "html" in parser.tags
    assert all(step_label(step) in text for step in trace["steps"])
    assert trace["failure"]["detail"].strip() in text

    regressions = folder / "tests" / "regressions"
    assert main(["regress", str(path), "--output", str(regressions)]) == 0
    [test_file] = regressions.glob("test_*.py")
    assert list((regressions / "traces").glob("*.json"))
    pytest_args = ["-m", "pytest", str(test_file), "-q", "-p", "no:cacheprovider"]
    buggy = run(pytest_args, folder, folder)
    assert buggy.returncode == 1, buggy.stdout + buggy.stderr
    assert "REPRODUCED" in buggy.stdout

    write_target(folder, buggy=False)  # the bug is fixed
    fixed = run(pytest_args, folder, folder)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    replayed = run(["-m", "modelcheck", "replay", str(path)], folder, folder)
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert "FIXED" in replayed.stdout


_FAKE_MACHINE = """
import os


def test_machine(request):
    with open(os.environ["WEEKLY_LOG"], "a") as log:
        log.write(f"{__name__} {request.config.getoption('hypothesis_seed')}\\n")
"""


@pytest.mark.slow
def test_weekly_runs_fresh_seeds_of_its_shard_only(tmp_path: Path) -> None:
    machines = tmp_path / "machines"
    machines.mkdir()
    for name in ("a", "b", "c"):
        (machines / f"test_{name}.py").write_text(_FAKE_MACHINE)
    log = tmp_path / "log"
    env = {**os.environ, "WEEKLY_LOG": str(log), "PYTHONPATH": str(REPO)}
    argv = [sys.executable, "-m", "modelcheck", "--profile", "dev", "weekly"]
    # "60s" and "30m" are parsed by test_durations_and_shards_parse; the budget is
    # shortened here to keep the suite fast.
    argv += ["--duration", "30s", "--shard", "1/2", "--machines-dir", str(machines)]
    argv += ["--report", str(tmp_path / "report.json")]
    result = subprocess.run(
        argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    runs = json.loads((tmp_path / "report.json").read_text())["runs"]
    order = [m.stem for m in machine_files(machines)]
    for run_ in runs:
        assert run_["number"] % 2 == 0  # shard 1 of 2 takes the even run numbers
        assert run_["machine"] == order[run_["number"] % 3]
        assert f"run {run_['number']}: {run_['machine']}.py seed={run_['seed']}" in result.stdout
    seen = [tuple(line.split()) for line in log.read_text().splitlines()]
    assert len(seen) >= 2, result.stdout  # several seeds
    assert len({seed for _, seed in seen}) == len(seen)  # a fresh seed every run
    # Every run that reached its test got exactly the seed the driver printed.
    assert set(seen) <= {(r["machine"], str(r["seed"])) for r in runs}
