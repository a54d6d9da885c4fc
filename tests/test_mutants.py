"""The mutant catalogue: it loads, every mutant installs, the machines kill mutants with
short, readable failures, and a concurrency failure replays identically."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import hypothesis
import psycopg
import pytest
from hypothesis import HealthCheck

from modelcheck._bench import load_machine
from modelcheck._postgres.isolation import DatabasePool
from modelcheck._postgres.server import EmbeddedServer, ExternalServer
from modelcheck._targets import resolve_target
from modelcheck.errors import Mismatch, StateMismatch
from modelcheck.machine import (
    SESSION_SETTINGS,
    DifferentialMachine,
    MachineEnvironment,
    installer_for,
    run_machine,
)
from modelcheck.suites.vstore.mutants import catalogue_paths
from modelcheck.suites.vstore.mutants.catalogue import (
    BUG_CLASSES,
    CATALOGUE,
    MACHINES,
    MUTANTS,
    Mutant,
    Mutation,
    MutationError,
    find,
    reference_function,
)
from modelcheck.suites.vstore.mutants.runner import (
    RunConfig,
    render_table,
    run_all,
    summary,
    write_report,
)

MACHINES_DIR = Path(__file__).resolve().parent.parent / "machines"
Server = EmbeddedServer | ExternalServer


@pytest.fixture(autouse=True)
def _traces_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Failure traces of these tests go to the test's tmp dir, not the repository."""
    monkeypatch.setenv("MODELCHECK_TRACES", str(tmp_path / "traces"))


def machine(name: str) -> type[DifferentialMachine]:
    return load_machine(MACHINES_DIR / f"test_{name}.py")


def environment(server: Server, pool: DatabasePool, target_name: str, seed: int) -> Any:
    return MachineEnvironment(resolve_target(target_name), pool, "dev", seed=seed)


def settings(examples: int, steps: int) -> hypothesis.settings:
    return hypothesis.settings(
        max_examples=examples,
        stateful_step_count=steps,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )


# ------------------------------------------------------------------------ catalogue


def test_catalogue_is_large_and_spread_over_every_bug_class() -> None:
    names = [info.name for info in CATALOGUE]
    assert len(names) >= 40
    assert len(set(names)) == len(names)
    assert all(name.startswith("mutant-") for name in names)
    assert {info.bug_class for info in CATALOGUE} == set(BUG_CLASSES)
    for info in CATALOGUE:
        assert info.description
        assert info.killers
        assert set(info.killers) <= set(MACHINES)
        assert (MACHINES_DIR / f"test_{info.killers[0]}.py").is_file()


def test_every_mutant_resolves_as_a_target_by_name() -> None:
    assert set(catalogue_paths()) == {info.name for info in CATALOGUE}
    for cls in MUTANTS:
        target = resolve_target(cls.name)
        assert isinstance(target, Mutant)
        assert type(target) is cls
        assert target.name == cls.name == find(cls.name).name
        # The mutated function is the last statement (a mutant may need an extension first).
        sql = target.extra_sql[-1]
        assert sql.startswith(f"CREATE OR REPLACE FUNCTION vstore.{cls.mutation.function}(")
        assert cls.mutation.new in sql
        original = reference_function(cls.mutation.file, cls.mutation.function)
        assert sql != original.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION")


def test_a_mutation_must_match_the_reference_exactly_once() -> None:
    with pytest.raises(MutationError, match="occurs 0 times"):
        Mutation("50_commits.sql", "commit", "no such text", "x").sql()
    with pytest.raises(MutationError, match="defines no function"):
        Mutation("50_commits.sql", "no_such_function", "x", "y").sql()
    with pytest.raises(KeyError, match="no mutant"):
        find("mutant-nope")


@pytest.mark.postgres
def test_every_mutant_installs(empty_dsn: str) -> None:
    with psycopg.connect(empty_dsn) as conn:
        for cls in MUTANTS:
            # Each install runs in a transaction rolled back afterwards: one database.
            with conn.transaction(force_rollback=True):
                cls().install(conn)
                row = conn.execute(
                    "SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
                    " WHERE n.nspname = 'vstore' AND p.proname = %s",
                    (cls.mutation.function,),
                ).fetchone()
                assert row == (1,), cls.name


def test_a_mismatch_is_data_and_renders_its_message() -> None:
    failure = Mismatch(
        heading="state differs",
        where="after step 2: log",
        machine="CommitMachine",
        target="m",
        detail="  branches['main'].head: model='a' db='b'",
        step=2,
        connection=0,
        step_count=2,
        history="  1. [c0] commit('main', '') -> ok\n  2. [c0] log('main') -> ok",
        trace="t.json",
        replay="python -m modelcheck replay t.json",
    )
    error = StateMismatch(failure)
    assert error.failure is failure
    message = str(error)
    assert message.startswith("modelcheck: state differs after step 2: log (target 'm'")
    assert "\nsteps:\n  1. [c0]" in message
    assert message.endswith(
        "trace: t.json (the reproduction; it replaces @reproduce_failure)\n"
        "replay: python -m modelcheck replay t.json"
    )


# ------------------------------------------------------- sequential kills, shrunk


@pytest.fixture(scope="module")
def pools(modelcheck_server: Server) -> Iterator[Callable[[str], DatabasePool]]:
    """One database pool per target, created on first use."""
    opened: dict[str, DatabasePool] = {}

    def pool(name: str) -> DatabasePool:
        if name not in opened:
            target = resolve_target(name)
            opened[name] = DatabasePool(
                modelcheck_server, installer_for(target), settings=SESSION_SETTINGS
            ).__enter__()
        return opened[name]

    yield pool
    for created in opened.values():
        created.__exit__(None, None, None)


SEQUENTIAL_KILLS = [
    # mutant, machine, seed, examples, steps, the differing path in the message
    # The id changes in the state: its IMMUTABLE law breaks before any diff is drawn.
    ("mutant-branch-id-changes", "commits", 2, 20, 8, r"uuid of \('branch', '[^']*'\) changed"),
    ("mutant-message-trimmed", "commits", 11, 40, 6, r"commit identifier: model="),
    # Found by look_alike in the opening: a create by another case of a taken name.
    ("mutant-branch-name-lowercased", "branches", 3, 20, 5, r"\('MAIN', 'main'\) -> error 42710"),
]


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.parametrize(
    ("mutant", "machine_name", "seed", "examples", "steps", "path"), SEQUENTIAL_KILLS
)
def test_a_sequential_mutant_fails_with_a_short_readable_mismatch(
    modelcheck_server: Server,
    pools: Callable[[str], DatabasePool],
    mutant: str,
    machine_name: str,
    seed: int,
    examples: int,
    steps: int,
    path: str,
) -> None:
    env = environment(modelcheck_server, pools(mutant), mutant, seed)
    with pytest.raises(StateMismatch) as failed:
        run_machine(machine(machine_name), env, settings(examples, steps))
    message = str(failed.value)
    assert 1 <= failed.value.failure.step_count <= 8, message
    assert re.search(path, message), message
    assert " db=" in message or re.search(r"\n +db: +", message), message  # a path or a result
    assert f"target {mutant!r}" in message
    assert env.results[machine(machine_name).__name__]["outcome"] == "failed"


# ---------------------------------------------------------- concurrency kills


def _commit_race(m: Any) -> None:
    m.use_connection(0, "read committed")
    m.run("commit", "main", "a")
    m.use_connection(1, None)
    m.run("commit", "main", "b")  # waits for c0's lock on main (the reference) or not (mutant)
    m.current = 0
    m.commit_transaction()


def _double_delete(m: Any) -> None:
    m.run("create_branch", "feat", "main")
    m.use_connection(0, "read committed")
    m.run("delete_branch", "feat")
    m.use_connection(1, None)
    m.run("delete_branch", "feat")
    m.current = 0
    m.commit_transaction()


def _create_beside(m: Any) -> None:
    m.run("create_branch", "feat", "main")
    m.use_connection(0, "read committed")
    m.run("create_branch", "x", "main")
    m.use_connection(1, None)
    m.run("create_branch", "y", "feat")  # locks only feat: nothing orders it after x
    m.current = 0
    m.commit_transaction()


SCENARIOS: dict[str, Callable[[Any], None]] = {
    "mutant-commit-no-lock": _commit_race,
    "mutant-delete-no-wait": _double_delete,
    "mutant-branch-pk-max-plus-one": _create_beside,
}


def run_scenario(
    server: Server, pool: DatabasePool, target_name: str, scenario: Callable[[Any], None]
) -> StateMismatch | None:
    """Drive the concurrency machine through ``scenario``; its failure or None."""
    concurrency = machine("concurrency")
    m: Any = concurrency(environment(server, pool, target_name, seed=7))
    try:
        m.open_connections(2)
        scenario(m)
    except StateMismatch as failure:
        return failure
    finally:
        m.teardown()
    return None


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.parametrize("mutant", sorted(SCENARIOS))
def test_the_concurrency_machine_catches_a_concurrency_mutant_with_a_timeline(
    modelcheck_server: Server, pools: Callable[[str], DatabasePool], mutant: str
) -> None:
    scenario = SCENARIOS[mutant]
    assert run_scenario(modelcheck_server, pools("reference"), "reference", scenario) is None
    failure = run_scenario(modelcheck_server, pools(mutant), mutant, scenario)
    assert failure is not None
    assert 1 <= failure.failure.step_count <= 8, failure
    message = str(failure)
    assert "no serial order explains the database" in message
    assert "timeline (one column per connection):" in message
    assert "… blocked" in message or "blocked" in message


@pytest.mark.postgres
@pytest.mark.slow
def test_a_concurrency_failure_replays_identically_twenty_times(
    modelcheck_server: Server, pools: Callable[[str], DatabasePool]
) -> None:
    mutant = "mutant-delete-no-wait"
    messages = {
        str(run_scenario(modelcheck_server, pools(mutant), mutant, SCENARIOS[mutant]))
        for _ in range(20)
    }
    assert len(messages) == 1
    (message,) = messages
    assert message is not None
    assert "timeline (one column per connection):" in message
    assert "delete_branch: model error 55000 branch_deleted, db ok" in message


# ------------------------------------------------------------------------ runner

_TINY_MACHINE = '''
import hypothesis

from modelcheck.machine import run_machine
from modelcheck.suites.vstore.rules import BranchRules


class TinyBranchMachine(BranchRules):
    """Few short examples: enough to delete main."""


def test_tiny_branch_machine(modelcheck_environment):
    run_machine(
        TinyBranchMachine,
        modelcheck_environment,
        hypothesis.settings(max_examples=40, stateful_step_count=3, deadline=None, database=None),
    )
'''


@pytest.mark.postgres
@pytest.mark.slow
def test_the_runner_kills_a_mutant_passes_the_reference_and_reports(
    modelcheck_server: Server, tmp_path: Path
) -> None:
    machines = tmp_path / "machines"
    machines.mkdir()
    (machines / "test_branches.py").write_text(_TINY_MACHINE)
    config = RunConfig(
        profile="dev",
        seed=1,  # a seed whose 40 tiny examples reach `delete_branch('main')`
        machines_dir=machines,
        work_dir=tmp_path / "work",
        dsn=modelcheck_server.dsn,
        timeout_s=300,
    )
    info = find("mutant-main-deletable")
    assert info.killers[0] == "branches"
    from modelcheck.suites.vstore.mutants import runner

    reference = runner.run_reference(config, machines=("branches",))
    outcomes = [*run_all([info], config, jobs=1, reference=False), reference]
    killed, ref = outcomes
    assert killed.verdict == "killed", killed
    assert killed.machine == "branches"
    assert killed.time_to_kill_s is not None
    assert killed.time_to_kill_s > 0
    assert killed.shrunk_steps == 1
    assert killed.minimised_steps == 1, "the minimiser replayed the trace and kept its step"
    assert killed.minimise_s is not None
    assert killed.failure
    assert "delete_branch('main')" in killed.failure
    assert ref.verdict == "passed", ref
    json_path, md_path = write_report(outcomes, tmp_path / "report.json", config)
    data = json.loads(json_path.read_text())
    assert data["summary"]["killed"] == 1
    assert data["summary"]["reference"] == "passed"
    assert data["results"][0]["name"] == "mutant-main-deletable"
    assert "| mutant-main-deletable | deletes | killed | branches |" in md_path.read_text()
    assert render_table(outcomes).count("\n") == 3
    assert summary(outcomes)["worst_shrunk_steps"] == 1
    assert summary(outcomes)["worst_minimised_steps"] == 1


# ------------------------------------------------------- invalid runs are never passes


def _scratch(tmp_path: Path, result: dict[str, Any] | None, name: str = "run") -> Path:
    """A scratch directory as a finished run leaves it: a report holding ``result``."""
    scratch = tmp_path / name
    scratch.mkdir()
    (scratch / "pytest.log").write_text("the log tail\n")
    if result is not None:
        report = {"machines": {"BranchMachine": result}}
        (scratch / "report.json").write_text(json.dumps(report))
    return scratch


_MISMATCH = {"step_count": 2, "trace": "traces/t.json"}
_ATTEMPTS: list[tuple[str, dict[str, Any] | None, int, str]] = [
    # name, machine result in the report (None: no report), pytest exit, verdict
    ("pass", {"outcome": "passed"}, 0, "passed"),
    ("kill", {"outcome": "failed", "failure": "f", "mismatch": _MISMATCH}, 1, "failed"),
    (
        "coverage",
        {"outcome": "failed", "error": "CoverageError", "failure": "rules that never ran"},
        1,
        "invalid",
    ),
    ("crash", {"outcome": "failed", "error": "KeyError", "failure": "'x'"}, 1, "invalid"),
    ("no report", None, 1, "invalid"),
    ("pytest crashed", {"outcome": "passed"}, 3, "invalid"),
    ("mismatch but exit 0", {"outcome": "failed", "mismatch": _MISMATCH}, 0, "invalid"),
    ("not run", {"outcome": "not run"}, 0, "invalid"),
]


@pytest.mark.parametrize(
    ("name", "result", "returncode", "verdict"), _ATTEMPTS, ids=[a[0] for a in _ATTEMPTS]
)
def test_only_a_pass_or_a_mismatch_is_a_valid_attempt(
    tmp_path: Path, name: str, result: dict[str, Any] | None, returncode: int, verdict: str
) -> None:
    from modelcheck.suites.vstore.mutants.runner import read_attempt

    attempt = read_attempt(_scratch(tmp_path, result), "branches", 1.0, returncode)
    assert attempt.verdict == verdict, attempt
    if verdict == "failed":
        assert attempt.shrunk_steps == 2
        assert attempt.trace == str(tmp_path / "run" / "traces/t.json")
    if verdict == "invalid":
        assert attempt.error


def test_a_report_with_no_machine_is_invalid(tmp_path: Path) -> None:
    from modelcheck.suites.vstore.mutants.runner import read_attempt

    scratch = tmp_path / "empty"
    scratch.mkdir()
    (scratch / "report.json").write_text(json.dumps({"machines": {}}))
    assert read_attempt(scratch, "branches", 1.0, 0).verdict == "invalid"


def _fake_runs(monkeypatch: pytest.MonkeyPatch, verdicts: dict[str, str]) -> list[tuple[str, str]]:
    """Replace the subprocess runs: machine -> verdict; returns the runs asked for."""
    from modelcheck.suites.vstore.mutants import runner

    calls: list[tuple[str, str]] = []

    def fake(target: str, machine: str, config: RunConfig) -> runner.Attempt:
        calls.append((target, machine))
        verdict: Any = verdicts[machine]
        error = "CoverageError" if verdict == "invalid" else None
        return runner.Attempt(machine, verdict, 1.0, error=error, failure="f")

    monkeypatch.setattr(runner, "run_machine_file", fake)
    return calls


def test_a_mutant_whose_runs_are_invalid_is_invalid_not_survived(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from modelcheck.suites.vstore.mutants import runner

    info = find("mutant-hash-case-folds")  # killers: migrations, combined
    config = RunConfig(work_dir=tmp_path)
    _fake_runs(monkeypatch, {"migrations": "invalid", "combined": "passed"})
    outcome = runner.run_mutant(info, config)
    assert outcome.verdict == "invalid"
    assert outcome.machine == "migrations"
    assert outcome.failure == "CoverageError"
    stats = summary([outcome])
    assert stats["invalid"] == [info.name]
    assert stats["survived"] == []
    assert stats["killed"] == 0

    calls = _fake_runs(monkeypatch, {"migrations": "invalid", "combined": "failed"})
    assert runner.run_mutant(info, config).verdict == "killed"
    assert calls == [(info.name, "migrations"), (info.name, "combined")]

    _fake_runs(monkeypatch, {"migrations": "passed", "combined": "passed"})
    assert runner.run_mutant(info, config).verdict == "survived"


def test_a_reference_run_that_is_invalid_is_not_passed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from modelcheck.suites.vstore.mutants import runner

    config = RunConfig(work_dir=tmp_path)
    _fake_runs(monkeypatch, {"branches": "passed", "commits": "invalid", "merges": "passed"})
    reference = runner.run_reference(config, machines=("branches", "commits", "merges"))
    assert reference.verdict == "invalid"
    assert reference.machine == "commits"
    assert summary([reference])["reference"] == "invalid"

    _fake_runs(monkeypatch, {"branches": "invalid", "commits": "failed", "merges": "passed"})
    reference = runner.run_reference(config, machines=("branches", "commits", "merges"))
    assert reference.verdict == "failed"  # a false alarm outranks an invalid run
    assert reference.machine == "commits"


def test_a_timed_out_run_is_invalid(tmp_path: Path) -> None:
    from modelcheck.suites.vstore.mutants import runner

    machines = tmp_path / "machines"
    machines.mkdir()
    (machines / "test_branches.py").write_text(
        "import time\n\ndef test_slow():\n    time.sleep(60)\n"
    )
    config = RunConfig(machines_dir=machines, work_dir=tmp_path / "work", timeout_s=0.5)
    attempt = runner.run_machine_file("reference", "branches", config)
    assert attempt.verdict == "invalid"
    assert attempt.error is not None
    assert attempt.error.startswith("timeout")


def test_a_minimiser_that_fails_leaves_the_kill_and_says_why(tmp_path: Path) -> None:
    from modelcheck.suites.vstore.mutants import runner

    broken = tmp_path / "t.json"
    broken.write_text("{not json")
    minimised = runner.minimise_trace("mutant-main-deletable", broken, RunConfig())
    assert minimised.steps is None
    assert minimised.error
    assert not broken.with_suffix(".min.json").exists()
