"""Stress mode: the checker on hand-made histories, then short real runs.

The hand-made histories take their expected results from the model itself (a serial
replay), so they stay right when the hashing or identifier rules change.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest

from modelcheck._postgres.isolation import DatabasePool
from modelcheck._postgres.server import EmbeddedServer, ExternalServer
from modelcheck.machine import installer_for
from modelcheck.suites.vstore.domain.model import Kind, Model, Predicted
from modelcheck.suites.vstore.reference.target import ReferenceTarget
from modelcheck.suites.vstore.results import VersionedStoreTarget as Target
from modelcheck.suites.vstore.snapshot import from_model
from modelcheck.suites.vstore.spec import bind_keys
from modelcheck.suites.vstore.stress import checker, report, runner
from modelcheck.suites.vstore.stress.history import Call

# ---------------------------------------------------------------------- hand-made histories

_pks = iter(range(100, 10_000))


def ok(
    index: int, worker: int, op: str, args: tuple[Any, ...], t: tuple[float, float], p: Predicted
) -> Call:
    """A successful call whose result is what the model predicted (fresh pk and id)."""
    result: Any = None
    if op == "commit":
        result = {
            "pk": next(_pks),
            "id": str(uuid4()),
            "identifier": p.identifier,
            "version": p.version,
            "schema_hash": p.schema_hash,
        }
    elif op == "create_branch":
        result = {"pk": next(_pks), "id": str(uuid4()), "identifier": p.identifier}
    elif op == "apply_migration":
        result = {
            "pk": next(_pks),
            "id": str(uuid4()),
            "identifier": p.identifier,
            "checksum": p.checksum,
        }
    elif op == "log":
        result = list(p.values)
    return Call(index, worker, op, args, t[0], t[1], "ok", result)


def failed(
    index: int, worker: int, op: str, args: tuple[Any, ...], t: tuple[float, float], state: str
) -> Call:
    return Call(index, worker, op, args, t[0], t[1], "error", None, state, "serialization_failure")


def kinds(result: checker.CheckResult) -> set[str]:
    return {a.kind for a in result.anomalies}


def test_overlapping_commits_in_either_result_order_pass() -> None:
    model = Model.initial()
    a = model.commit("main", "a")
    b = model.commit("main", "b")
    # b was invoked first but its result says it ran second: overlapping, so fine.
    history = [
        ok(0, 1, "commit", ("main", "b"), (0.0, 3.0), b),
        ok(1, 0, "commit", ("main", "a"), (1.0, 2.0), a),
    ]
    result = checker.check(history)
    assert result.verdict == "pass", result.anomalies
    assert result.partitions[0].order == (1, 0)


def test_real_time_order_is_enforced() -> None:
    model = Model.initial()
    a = model.commit("main", "a")
    b = model.commit("main", "b")
    # b's result needs a first, but b completed before a was invoked.
    history = [
        ok(0, 1, "commit", ("main", "b"), (0.0, 1.0), b),
        ok(1, 0, "commit", ("main", "a"), (2.0, 3.0), a),
    ]
    result = checker.check(history)
    assert result.verdict == "anomaly"
    assert kinds(result) == {"no_serial_order"}


def test_lost_update_is_an_anomaly() -> None:
    # Both commits claim the root as parent: no serial order produces both results.
    a = Model.initial().commit("main", "a")
    b = Model.initial().commit("main", "b")
    history = [
        ok(0, 0, "commit", ("main", "a"), (0.0, 2.0), a),
        ok(1, 1, "commit", ("main", "b"), (0.5, 2.5), b),
    ]
    result = checker.check(history)
    assert result.verdict == "anomaly"
    (anomaly,) = result.anomalies
    assert anomaly.kind == "no_serial_order"
    assert set(anomaly.calls) & {0, 1}


def test_duplicate_id_is_an_anomaly() -> None:
    model = Model.initial()
    x = ok(0, 0, "create_branch", ("x", "main"), (0.0, 1.0), model.create_branch("x", "main"))
    y = ok(1, 1, "create_branch", ("y", "main"), (2.0, 3.0), model.create_branch("y", "main"))
    y = Call(
        1, 1, "create_branch", ("y", "main"), 2.0, 3.0, "ok", {**y.result, "id": x.result["id"]}
    )
    result = checker.check([x, y])
    assert result.verdict == "anomaly"
    assert "duplicate_id" in kinds(result)


def test_aborted_but_visible_is_an_anomaly() -> None:
    model = Model.initial()
    model.commit("main", "a")
    log = model.log("main")
    history = [
        failed(0, 0, "commit", ("main", "a"), (0.0, 1.0), "40001"),
        ok(1, 1, "log", ("main",), (2.0, 3.0), log),
    ]
    result = checker.check(history)
    assert result.verdict == "anomaly"
    assert kinds(result) == {"no_serial_order"}


def test_aborted_without_effect_passes() -> None:
    log = Model.initial().log("main")
    history = [
        failed(0, 0, "commit", ("main", "a"), (0.0, 1.0), "40P01"),
        ok(1, 1, "log", ("main",), (2.0, 3.0), log),
    ]
    assert checker.check(history).verdict == "pass"


def test_bound_hit_is_unknown_never_pass() -> None:
    model = Model.initial()
    predicted = [model.commit("main", f"m{i}") for i in range(6)]
    # All overlap; results in reverse invoke order, so the search must backtrack.
    history = [
        ok(i, i, "commit", ("main", f"m{i}"), (0.1 * (5 - i), 10.0), predicted[i]) for i in range(6)
    ]
    assert checker.check(history).verdict == "pass"
    result = checker.check(history, bound=2)
    assert result.verdict == "unknown"
    assert result.unknown
    assert "bound" in result.unknown[0]


def test_partitions_split_by_branch_and_join_on_merge() -> None:
    model = Model.initial()
    calls = [
        ok(0, -1, "create_branch", ("x", "main"), (0.0, 0.1), model.create_branch("x", "main")),
        ok(1, -1, "create_branch", ("y", "main"), (0.2, 0.3), model.create_branch("y", "main")),
    ]
    history = [
        ok(2, 0, "commit", ("x", "a"), (1.0, 2.0), model.commit("x", "a")),
        ok(3, 1, "commit", ("y", "b"), (1.0, 2.0), model.commit("y", "b")),
    ]
    result = checker.check(history, setup=calls)
    assert result.verdict == "pass"
    assert result.counts()["pass"] == 2
    merge = Call(4, 2, "merge", ("x", "y"), 3.0, 4.0, "error", None, "40001", "x")
    assert len(checker.partition([*history, merge])) == 2  # aborted calls join nothing
    merge = Call(4, 2, "merge", ("x", "y"), 3.0, 4.0, "error", None, "23000", "merge_conflict")
    assert len(checker.partition([*history, merge])) == 1


def test_final_state_counts_rollbacks_that_name_only_the_migration() -> None:
    # The rollback changes main after the last call that names main.
    model = Model.initial()
    bind_keys(model, "branch", "main", 1, uuid4())
    bind_keys(model, "commit", model.branches["main"].head, 1, uuid4())
    table = [{"name": "id", "type": "integer", "nullable": True, "default": None}]
    ops = [{"op": "create_table", "table": "t", "columns": table}]
    calls: list[tuple[str, tuple[Any, ...], Kind | None]] = [
        ("apply_migration", ("main", "0001_a", ops), "migration"),
        ("commit", ("main", "x"), "commit"),
        ("rollback_migration", ("0001_a",), None),
    ]
    history = []
    for index, (op, args, kind) in enumerate(calls):
        call = ok(index, 0, op, args, (index, index + 0.5), getattr(model, op)(*args))
        if kind is not None:
            r = call.result
            bind_keys(model, kind, r["identifier"], r["pk"], UUID(r["id"]))
        history.append(call)
    final = from_model(model)
    result = checker.check(history, final=final)
    assert result.verdict == "pass", [a.message for a in result.anomalies]
    # Without the rollback in the history, the database's state is unexplained.
    assert checker.check(history[:2], final=final).verdict == "anomaly"


def test_cli_options() -> None:
    from modelcheck._cli import build_parser
    from modelcheck._cli.stress import parse_duration, parse_sweep

    assert parse_duration("60s") == 60.0
    assert parse_duration("2m") == 120.0
    assert parse_duration("500ms") == 0.5
    assert parse_sweep("8,32,64") == [8, 32, 64]
    args = build_parser().parse_args(
        ["--target", "reference", "stress", "--workers", "4", "--duration", "3s"]
    )
    assert (args.command, args.workers, args.duration, args.target) == (
        "stress",
        4,
        3.0,
        "reference",
    )


def test_trace_round_trip() -> None:
    model = Model.initial()
    call = ok(0, 0, "commit", ("main", "a"), (0.0, 1.0), model.commit("main", "a"))
    assert Call.from_json(json.loads(json.dumps(call.to_json()))) == call


def test_one_trace_per_distinct_anomaly(tmp_path: Path) -> None:
    model = Model.initial()
    calls = {
        i: ok(i, i, "commit", ("main", m), (float(i), i + 1.0), model.commit("main", m))
        for i, m in enumerate("abc")
    }
    same_bug = [
        checker.Anomaly("fork", "g0 forked", (0, 1), (0, 1, 2)),
        checker.Anomaly("fork", "g1 forked", (1, 0), (0, 1)),  # smaller: the one kept
        checker.Anomaly("no_serial_order", "stuck", (0, 2)),
    ]
    kept = report.distinct(same_bug, calls)
    assert [(a.kind, a.message) for a in kept] == [
        ("fork", "g1 forked"),
        ("no_serial_order", "stuck"),
    ]


def test_a_stress_trace_given_to_replay_says_what_it_is(tmp_path: Path) -> None:
    from modelcheck._traces import trace as _trace
    from modelcheck.errors import TraceError

    path = tmp_path / "anomaly-w8-1-fork.json"
    path.write_text(json.dumps({"version": 1, "workers": 8, "anomaly": {}, "steps": []}))
    with pytest.raises(TraceError, match=r"stress anomaly trace.*stress --html"):
        _trace.load(path)


# -------------------------------------------------------------------------- real runs


class UnlockedCommit(ReferenceTarget):
    """A mutant: ``commit`` reads its branch without ``FOR UPDATE`` (a lost update)."""

    name = "unlocked_commit"
    extra_sql = (
        """
        CREATE OR REPLACE FUNCTION vstore.commit(branch text, message text)
        RETURNS vstore.commit_result
        LANGUAGE plpgsql AS $$
        DECLARE
            b vstore.branches;
            c vstore.commits;
        BEGIN
            PERFORM vstore.check_message(message);
            SELECT * INTO b FROM vstore.branches WHERE identifier = branch;  -- no FOR UPDATE
            PERFORM vstore.check_active(b, branch);
            IF vstore.tree_hash(b.schema_name) IS DISTINCT FROM b.tree_hash THEN
                PERFORM vstore.raise_error('schema_drift', 'drifted');
            END IF;
            PERFORM pg_sleep(0.001);  -- widen the window between read and write
            c := vstore.add_commit(b, ARRAY[b.head_pk], message);
            RETURN (c.pk, c.id, c.identifier, c.version, c.schema_hash)::vstore.commit_result;
        END
        $$;
        """,
    )


def _stress(
    server: EmbeddedServer | ExternalServer, target: Target, config: runner.StressConfig
) -> tuple[runner.RunResult, checker.CheckResult]:
    with DatabasePool(server, installer_for(target), ahead=0) as pool, pool.database() as db:
        result = runner.run(target, db.dsn, config)
    return result, checker.check(result.history, setup=result.setup, final=result.final)


Server = EmbeddedServer | ExternalServer


@pytest.mark.slow
@pytest.mark.postgres
def test_short_run_against_the_reference_passes(modelcheck_server: Server, tmp_path: Path) -> None:
    run, check = _stress(
        modelcheck_server, ReferenceTarget(), runner.StressConfig(workers=6, duration=3, seed=7)
    )
    assert check.verdict == "pass", [a.message for a in check.anomalies]
    assert len(run.history) > 50
    assert {c.operation for c in run.history} >= {"commit", "apply_migration", "merge", "log"}
    assert not check.unknown
    doc = report.document([(run, check)], seed=7)
    assert doc["verdict"] == "pass"
    assert doc["runs"][0]["latency"]["p50_ms"] > 0
    (tmp_path / "r.html").write_text(report.render_html(doc))
    assert "<svg" in (tmp_path / "r.html").read_text()


@pytest.mark.slow
@pytest.mark.postgres
def test_unlocked_commit_mutant_is_reported(modelcheck_server: Server, tmp_path: Path) -> None:
    config = runner.StressConfig(workers=8, duration=4, seed=11, group_size=8)
    run, check = _stress(modelcheck_server, UnlockedCommit(), config)
    assert check.verdict == "anomaly"
    assert kinds(check) & {"no_serial_order", "fork"}
    written = report.write_traces(tmp_path, [(run, check)], seed=11)
    trace = json.loads(written[0].read_text())
    assert trace["version"] == 1
    assert trace["target"] == "unlocked_commit"
    assert trace["steps"]
    assert {"worker", "operation", "args"} <= set(trace["steps"][0])


@pytest.mark.slow
@pytest.mark.postgres
def test_more_workers_than_connection_slots_lose_nothing() -> None:
    target = ReferenceTarget()
    with EmbeddedServer(settings={"max_connections": "8"}) as small:
        config = runner.StressConfig(workers=12, duration=3, seed=3, reconnect_every=(3, 8))
        run, check = _stress(small, target, config)
    assert run.connect_refusals.get("53300", 0) > 0
    assert check.verdict == "pass", [a.message for a in check.anomalies]
    assert {c.worker for c in run.history} == set(range(12))
