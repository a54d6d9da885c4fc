"""Differential state machines: one rule runs on the model and on the target, then both
full states are compared.

A rule is written once::

    @rule(name=st_branch_names(), source=branches)
    def create_branch(self, name, source):
        return self.run("create_branch", name, source)

``run`` calls ``model.<operation>(*args)`` and ``await target.<operation>(conn, *args)``,
compares results or errors (``(SQLSTATE, kind)``), binds the Trinity keys the model
cannot predict, then reads the whole database state in one round trip and compares it
with the model's. Any difference raises one :class:`StateMismatch` with the step, the
path-by-path diff and how to replay.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any, ClassVar, Final

import attrs
import hypothesis
import psycopg
from hypothesis.stateful import RuleBasedStateMachine, run_state_machine_as_test

from modelcheck import diff
from modelcheck._domain.errors import DomainError
from modelcheck._domain.model import Kind, Model, Predicted
from modelcheck._isolation import CleanDatabase, DatabasePool, Installer
from modelcheck._notes import note_step
from modelcheck._target import (
    CommitResult,
    Drift,
    MergeResult,
    MigrationResult,
    Target,
    TrinityId,
)
from modelcheck.errors import CoverageError, ServerError, StateMismatch
from modelcheck.snapshot import (
    BranchRow,
    CommitRow,
    Snapshot,
    from_model,
    install_observer,
    read_snapshot,
)

#: Settings every machine session gets: small deadlock_timeout so blocked statements
#: settle fast and deterministically (docs/concurrency.md).
SESSION_SETTINGS: Final = {"deadlock_timeout": "20ms", "lock_timeout": "0"}


def installer_for(target: Target) -> Installer:
    """Install the target, then the framework's observer, into a template database."""

    def install(conn: psycopg.Connection[Any]) -> None:
        target.install(conn)
        install_observer(conn)

    return install


@attrs.define
class Coverage:
    """Per-rule counts and precondition outcomes over a whole test (all examples)."""

    rules: collections.Counter[str] = attrs.field(factory=collections.Counter)
    outcomes: collections.Counter[str] = attrs.field(factory=collections.Counter)
    preconditions: dict[str, collections.Counter[bool]] = attrs.field(factory=dict)
    steps: int = 0
    examples: int = 0

    def report(self) -> str:
        lines = [f"{self.examples} examples, {self.steps} checked steps"]
        for name in sorted(self.rules):
            lines.append(f"  rule {name:<28} {self.rules[name]:>6} runs")
        for name, held in sorted(self.preconditions.items()):
            lines.append(f"  precondition {name:<20} held {held[True]}/{held[True] + held[False]}")
        return "\n".join(lines)


@attrs.define
class MachineEnvironment:
    """What a machine needs from the session: the target and a pool of clean databases."""

    target: Target
    pool: DatabasePool
    profile: str = "dev"
    seed: int = 0
    coverage: dict[str, Coverage] = attrs.field(factory=dict)
    results: dict[str, dict[str, Any]] = attrs.field(factory=dict)

    def report(self) -> dict[str, Any]:
        """The JSON report of every machine run in this environment."""
        return {
            "target": self.target.name,
            "profile": self.profile,
            "seed": self.seed,
            "machines": self.results,
        }


@attrs.define
class Step:
    """One executed rule, for failure messages and traces."""

    number: int
    connection: int
    operation: str
    args: tuple[Any, ...]
    outcome: str
    #: The statement sent, when the machine knows it (traces fill in the rest).
    sql: str | None = None

    def describe(self) -> str:
        shown = ", ".join(repr(a) for a in self.args)
        return f"{self.number:>3}. [c{self.connection}] {self.operation}({shown}) -> {self.outcome}"


_TRINITY_KIND: Final[dict[str, Kind]] = {
    "create_branch": "branch",
    "commit": "commit",
    "apply_migration": "migration",
    "merge": "commit",
}


class DifferentialMachine(RuleBasedStateMachine):
    """Base class: owns the event loop, the example's database and its connections."""

    #: Sequential machines require pks to grow with every creation; interleaved ones
    #: only require them fresh (commit order is not pk order).
    monotonic_pks: ClassVar[bool] = True

    def __init__(self, environment: MachineEnvironment) -> None:
        super().__init__()
        self.environment = environment
        self.target = environment.target
        self.model = Model.initial()
        self.steps: list[Step] = []
        self.coverage = environment.coverage.setdefault(type(self).__name__, Coverage())
        self.coverage.examples += 1
        self._cleanup = contextlib.ExitStack()
        self.loop = asyncio.new_event_loop()
        self._cleanup.callback(self.loop.close)
        try:
            self.database: CleanDatabase = self._cleanup.enter_context(environment.pool.database())
            self.conn = self.connect()
            self._bind_initial()
        except BaseException:
            self._cleanup.close()
            raise

    # -- resources -----------------------------------------------------------------

    def connect(self, *, autocommit: bool = True) -> psycopg.AsyncConnection[Any]:
        """A new connection to this example's database, closed at teardown."""
        options = " ".join(f"-c {k}={v}" for k, v in SESSION_SETTINGS.items())
        try:
            conn = self.loop.run_until_complete(
                psycopg.AsyncConnection.connect(
                    self.database.dsn, autocommit=autocommit, options=options
                )
            )
        except psycopg.OperationalError as exc:
            if exc.sqlstate == "53300" or "too many clients" in str(exc):
                raise ServerError(
                    "The server has no connection slot left (SQLSTATE 53300). To fix this, "
                    "either: raise max_connections, run fewer pytest-xdist workers, or "
                    "close connections your target keeps open."
                ) from exc
            raise
        self._cleanup.callback(lambda: self.loop.run_until_complete(conn.close()))
        return conn

    def teardown(self) -> None:
        self._cleanup.close()

    def await_(self, coroutine: Any) -> Any:
        return self.loop.run_until_complete(coroutine)

    # -- the differential step ---------------------------------------------------------

    def run(self, operation: str, *args: Any) -> Predicted | None:
        """Run one operation on both sides, compare results, then compare full state."""
        number = len(self.steps) + 1
        # Coverage is per rule: the rule is the function that called run().
        self.coverage.rules[sys._getframe(1).f_code.co_name] += 1
        self.coverage.steps += 1
        expected: Predicted | None = None
        expected_error: DomainError | None = None
        try:
            expected = getattr(self.model, operation)(*args)
        except DomainError as error:
            expected_error = error
        actual: Any = None
        actual_error: DomainError | None = None
        try:
            actual = self.await_(getattr(self.target, operation)(self.conn, *args))
        except DomainError as error:
            actual_error = error
        outcome = (
            f"error {actual_error.sqlstate} {actual_error.kind}" if actual_error else _short(actual)
        )
        self.coverage.outcomes[
            f"{operation}: {'error ' + actual_error.kind if actual_error else 'ok'}"
        ] += 1
        step = Step(number, 0, operation, args, outcome)
        self.steps.append(step)
        note_step(step.describe())
        problems = self._compare_outcome(
            operation, args, expected, expected_error, actual, actual_error
        )
        if problems:
            self.fail(step, "\n".join(f"  {p}" for p in problems))
        self.check_state(step)
        return expected if expected_error is None else None

    def check_state(self, step: Step | None = None) -> None:
        """Compare the model's snapshot with the database's committed state."""
        db = self.read_state()
        model = from_model(self.model)
        if model != db:
            self.fail(step, diff.render(model, db), heading="state differs")

    def read_state(self) -> Snapshot:
        return self.await_(read_snapshot(self.conn, self.target.store_schemas))  # type: ignore[no-any-return]

    def fail(self, step: Step | None, detail: str, heading: str = "result differs") -> None:
        from modelcheck import _trace

        where = f"after step {step.number}: {step.operation}" if step else "at the start"
        history = "\n".join(s.describe() for s in self.steps[-30:])
        trace = _trace.record_failure(self, step, heading, where, detail)
        message = (
            f"modelcheck: {heading} {where} (target {self.target.name!r}, "
            f"machine {type(self).__name__})\n{detail}\n"
            f"steps (model vs {self.target.name}):\n{history}\n"
            f"{_trace.replay_lines(trace) or f'replay: {replay_hint()}'}"
        )
        _trace.store_message(trace, message)
        raise StateMismatch(message)

    # -- comparing results -------------------------------------------------------------

    def _compare_outcome(
        self,
        operation: str,
        args: tuple[Any, ...],
        expected: Predicted | None,
        expected_error: DomainError | None,
        actual: Any,
        actual_error: DomainError | None,
    ) -> list[str]:
        if expected_error is not None or actual_error is not None:
            if expected_error is None:
                return [f"model: ok {_short(expected)}", f"db:    error {_err(actual_error)}"]
            if actual_error is None:
                return [f"model: error {_err(expected_error)}", f"db:    ok {_short(actual)}"]
            if expected_error.outcome != actual_error.outcome:
                return [
                    f"model: error {_err(expected_error)}",
                    f"db:    error {_err(actual_error)}",
                ]
            return []
        assert expected is not None
        problems = list(_result_problems(expected, actual, args))
        if problems:
            return problems
        kind = _TRINITY_KIND.get(operation)
        trinity = _trinity_of(actual)
        if kind is not None and trinity is not None:
            try:
                self.model.bind(
                    kind, trinity.identifier, trinity.pk, trinity.id, monotonic=self.monotonic_pks
                )
            except AssertionError as exc:
                return [f"Trinity ID property broken: {exc}"]
        if operation == "resolve" and isinstance(actual, TrinityId):
            key = self.model.entity_key(args[0], actual.identifier)
            if (key.pk, key.id) != (actual.pk, actual.id):
                return [f"resolve gave keys ({actual.pk}, {actual.id}), bound ({key.pk}, {key.id})"]
        return []

    def _bind_initial(self) -> None:
        db = self.read_state()
        rows: list[tuple[Kind, str, BranchRow | CommitRow]] = [
            *(("branch", name, row) for name, row in db.branches.items()),
            *(("commit", name, row) for name, row in db.commits.items()),
        ]
        for kind, name, row in rows:
            if name in self.model.entities(kind) and row.pk is not None and row.id is not None:
                self.model.bind(kind, name, row.pk, row.id, monotonic=self.monotonic_pks)
        self.check_state()

    # -- running under pytest ------------------------------------------------------------

    @classmethod
    def pytest_test(cls) -> Callable[..., None]:
        """A pytest test function running this machine with the session's environment."""

        def test(modelcheck_environment: MachineEnvironment) -> None:
            run_machine(cls, modelcheck_environment)

        test.__name__ = f"test_{_snake(cls.__name__)}"
        test.__qualname__ = test.__name__
        return test


def run_machine(
    machine: type[DifferentialMachine],
    environment: MachineEnvironment,
    settings: hypothesis.settings | None = None,
) -> None:
    """Run one machine under the environment's seed; record its result for the report."""
    name = machine.__name__
    coverage = environment.coverage.setdefault(name, Coverage())
    print(f"\nmodelcheck: {name} on {environment.target.name}, seed={environment.seed}")
    factory = hypothesis.seed(environment.seed)(lambda: machine(environment))
    started = time.perf_counter()
    result: dict[str, Any] = {"outcome": "passed", "seed": environment.seed}
    try:
        run_state_machine_as_test(factory, settings=settings)  # type: ignore[arg-type]
    except BaseException as exc:
        result.update(outcome="failed", failure=str(exc), error=type(exc).__name__)
        raise
    finally:
        result.update(
            duration_s=round(time.perf_counter() - started, 3),
            examples=coverage.examples,
            steps=coverage.steps,
            rules=dict(coverage.rules),
            outcomes=dict(coverage.outcomes),
            preconditions={k: dict(v) for k, v in coverage.preconditions.items()},
        )
        environment.results[name] = result
        print(f"{name}: {coverage.report()}")
    never = sorted(rule_names(machine) - set(coverage.rules) - {"start_on_main"})
    if never and environment.profile == "dev":
        # A dev run is a quick look; only full runs (ci, weekly) must reach every rule.
        print(f"{name}: rules that did not run in this short dev run: {', '.join(never)}")
        result["rules_not_run"] = never
    elif never:
        result.update(outcome="failed", error="CoverageError")
        raise CoverageError(
            f"{name}: rules that never ran: {', '.join(never)}. To fix this, "
            "either: run more examples (--modelcheck-profile ci), or loosen the "
            "rule's precondition / argument strategies."
        )


def counted_predicate(predicate: Callable[[Any], bool]) -> Callable[[Any], bool]:
    """Wrap a named precondition so the coverage report says how often it held."""

    @functools.wraps(predicate)
    def wrapper(self: Any) -> bool:
        held = predicate(self)
        self.coverage.preconditions.setdefault(predicate.__name__, collections.Counter())[held] += 1
        return held

    return wrapper


def rule_names(machine: type[RuleBasedStateMachine]) -> set[str]:
    """Every rule of a machine class (Hypothesis marks rule functions with an attribute)."""
    return {
        name
        for name in dir(machine)
        if getattr(getattr(machine, name, None), "hypothesis_stateful_rule", None) is not None
    }


def replay_hint() -> str:
    test = os.environ.get("PYTEST_CURRENT_TEST", "").split(" ")[0]
    return (
        f"pytest '{test}' with the @seed / @reproduce_failure line Hypothesis prints below"
        if test
        else "rerun with the seed Hypothesis prints below"
    )


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) < 160 else text[:159] + "…"


def _err(error: DomainError | None) -> str:
    assert error is not None
    return f"{error.sqlstate} {error.kind} ({error.message})"


def _trinity_of(actual: Any) -> TrinityId | None:
    if isinstance(actual, TrinityId):
        return actual
    if isinstance(actual, CommitResult):
        return actual.commit
    if isinstance(actual, MigrationResult):
        return actual.migration
    if isinstance(actual, MergeResult):
        return actual.commit
    return None


def _result_problems(expected: Predicted, actual: Any, args: tuple[Any, ...]) -> Iterator[str]:
    def differ(what: str, model: Any, db: Any) -> Iterator[str]:
        if model != db:
            yield f"{what}: model={model!r} db={db!r}"

    kind = expected.kind
    if kind in ("delete_branch", "rollback_migration"):
        yield from differ("result", None, actual)
    elif kind in ("create_branch", "resolve"):
        got = actual.identifier if isinstance(actual, TrinityId) else actual
        yield from differ("identifier", expected.identifier, got)
    elif kind == "commit":
        if not isinstance(actual, CommitResult):
            yield f"result: expected a CommitResult, db gave {actual!r}"
            return
        yield from differ("commit identifier", expected.identifier, actual.commit.identifier)
        yield from differ("version", expected.version, actual.version)
        yield from differ("schema_hash", expected.schema_hash, actual.schema_hash)
    elif kind == "apply_migration":
        if not isinstance(actual, MigrationResult):
            yield f"result: expected a MigrationResult, db gave {actual!r}"
            return
        yield from differ("migration identifier", expected.identifier, actual.migration.identifier)
        yield from differ("checksum", expected.checksum, actual.checksum)
    elif kind == "merge":
        if not isinstance(actual, MergeResult):
            yield f"result: expected a MergeResult, db gave {actual!r}"
            return
        yield from differ("merge kind", expected.merge_kind, actual.kind)
        yield from differ("version", expected.version, actual.version)
        got = actual.commit.identifier if actual.commit else None
        yield from differ("merge commit", expected.identifier, got)
    elif kind == "log":
        yield from differ("log", expected.values, tuple(actual))
    elif kind == "verify":
        got = tuple((d.branch, tuple(d.objects)) for d in actual if isinstance(d, Drift))
        yield from differ("verify", expected.values, got)
    else:  # pragma: no cover - a new operation must say how to compare it
        raise NotImplementedError(f"no result comparison for {kind!r}")
