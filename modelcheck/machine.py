"""Differential state machines: one rule runs on the model and on the target, then both
full states are compared.

A rule is written once::

    @rule(name=st_branch_names(), source=branches)
    def create_branch(self, name, source):
        return self.run("create_branch", name, source)

``run`` looks the operation up in the machine's :class:`~modelcheck.spec.Spec`, calls
the model and ``await target.<operation>(conn, *args)``, compares results (the
operation's row says how) or errors (``(SQLSTATE, kind)``), learns the opaque values
the model cannot predict and checks their laws, then reads the whole database state
and compares it with the model's expected state. Any difference raises one
:class:`StateMismatch` with the step, the path-by-path diff and how to replay.
"""

from __future__ import annotations

import ast
import asyncio
import collections
import contextlib
import functools
import hashlib
import inspect
import os
import re
import textwrap
import time
import types
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar, Final, TextIO, TypeVar

import attrs
import hypothesis
import psycopg
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, run_state_machine_as_test

from modelcheck import diff
from modelcheck._notes import note_step
from modelcheck._opening import check_opening, run_opening
from modelcheck._postgres.blocking import BlockingAsyncConnection
from modelcheck._postgres.isolation import CleanDatabase, DatabasePool, Installer
from modelcheck._postgres.warm import WarmBackend
from modelcheck._progress import Progress
from modelcheck._projection import project
from modelcheck.errors import CoverageError, Mismatch, ServerError, StateMismatch
from modelcheck.spec import Capabilities, InvalidDefinition, Opaque, OperationError, Spec
from modelcheck.target import Target, capabilities_of, check_target, classify, observe

T = TypeVar("T")

#: A directory: each machine run writes its trail there as text, one line per step
#: (``nox -s soak`` sets it, to show where two runs of one seed parted).
TRAIL_LOG_ENV: Final = "MODELCHECK_TRAIL_LOG"

#: Settings every machine session gets: small deadlock_timeout so blocked statements
#: settle fast and deterministically (docs/concurrency.md).
SESSION_SETTINGS: Final = {"deadlock_timeout": "20ms", "lock_timeout": "0"}


def session_options() -> str:
    """:data:`SESSION_SETTINGS` as libpq ``options`` (the session's reset values)."""
    return " ".join(f"-c {k}={v}" for k, v in SESSION_SETTINGS.items())


def installer_for(target: Target, spec: Spec[Any, Any] | None = None) -> Installer:
    """Install the target, then what its spec's default observer needs, into a template."""
    from modelcheck._targets import spec_of  # the registry: the one place naming suites

    chosen = spec or spec_of(target)

    def install(conn: psycopg.Connection[Any]) -> None:
        target.install(conn)
        if getattr(target, "observe", None) is None:
            chosen.install_observer(conn)

    return install


@attrs.define
class Coverage:
    """Per-rule counts and precondition outcomes over a whole test (all examples)."""

    rules: collections.Counter[str] = attrs.field(factory=collections.Counter)
    #: Rules that ran only operations the target declared unsupported.
    skipped: collections.Counter[str] = attrs.field(factory=collections.Counter)
    outcomes: collections.Counter[str] = attrs.field(factory=collections.Counter)
    preconditions: dict[str, collections.Counter[bool]] = attrs.field(factory=dict)
    #: What ``draw_unvisited`` drew, per label: which variants of a scenario a run saw.
    choices: dict[str, collections.Counter[str]] = attrs.field(factory=dict)
    steps: int = 0
    examples: int = 0
    #: Seconds from the machine's start to its first failure (before any shrinking).
    first_failure_s: float | None = None
    #: Every rule run and its outcomes, step after step, hashed: two runs of one seed
    #: with the same trail had the same outcomes step by step (``nox -s soak``).
    trail: Any = attrs.field(factory=hashlib.sha256, eq=False, repr=False)
    _step_events: list[str] = attrs.field(factory=list, eq=False, repr=False)
    #: Where each hashed step is also written as text (``MODELCHECK_TRAIL_LOG``), so
    #: two runs whose trails differ can be diffed line by line.
    log: TextIO | None = attrs.field(default=None, eq=False, repr=False)

    def follow(self, event: str) -> None:
        """Add a rule run (which starts a step), an example start or an outcome.

        Within one step the outcomes are hashed as a sorted multiset: when one step
        ends two sessions' statements at once (a deadlock victim's abort frees the
        other), Postgres may report them in either order, and that order is not an
        outcome."""
        if event == "example" or event.startswith("rule "):
            self._flush()
        self._step_events.append(event)

    def _flush(self) -> None:
        events = sorted(self._step_events)
        for event in events:
            self.trail.update(event.encode() + b"\n")
        self.trail.update(b"--\n")
        if self.log is not None and events:
            self.log.write(" | ".join(events) + "\n")
        self._step_events.clear()

    def describe(self, text: str) -> None:
        """Write a step's description into the trail log (not into the hash: the
        trail is outcomes; where they diverge, the log also says which call it was)."""
        if self.log is not None:
            self.log.write(f"  # {text}\n")

    def trail_digest(self) -> str:
        """The trail so far (the current step included)."""
        self._flush()
        return str(self.trail.hexdigest())

    def report(self) -> str:
        lines = [f"{self.examples} examples, {self.steps} checked steps"]
        for name in sorted(self.rules):
            lines.append(f"  rule {name:<28} {self.rules[name]:>6} runs")
        for name in sorted(self.skipped):
            lines.append(f"  rule {name:<28} {self.skipped[name]:>6} skipped (unsupported)")
        for name, held in sorted(self.preconditions.items()):
            lines.append(f"  precondition {name:<20} held {held[True]}/{held[True] + held[False]}")
        for label, drawn in sorted(self.choices.items()):
            counts = ", ".join(f"{option} {n}" for option, n in sorted(drawn.items()))
            lines.append(f"  drawn {label:<27} {counts}")
        lines += self.contention()
        return "\n".join(lines)

    def contention(self) -> list[str]:
        """For interleaved machines: how much the sessions fought (docs/concurrency.md)."""
        counts = self.outcomes
        committed = counts["transaction committed"]
        aborted = counts["transaction aborted"]
        if not committed + aborted:
            return []
        by_state = ", ".join(
            f"{key.removeprefix('abort ')} {counts[key]}"
            for key in sorted(counts)
            if key.startswith("abort ")
        )
        blocked = counts["statement blocked"]
        per_1000 = 1000 * blocked / max(self.steps, 1)
        share = 100 * committed / (committed + aborted)
        return [
            f"  contention: transactions committed {committed} ({share:.0f} %), "
            f"aborted {aborted} ({by_state or 'none by SQLSTATE'})",
            f"  contention: statements blocked {blocked} ({per_1000:.1f} per 1,000 steps), "
            f"deadlocks {counts['abort 40P01']}, oracle unknown {counts['oracle unknown']}",
            f"  contention: reads checked against their snapshot "
            f"{counts['snapshot read checked']}, not checkable "
            f"{counts['snapshot read unchecked']}",
        ]


@attrs.define
class MachineEnvironment:
    """What a machine needs from the session: the target and a pool of clean databases."""

    target: Target
    pool: DatabasePool
    profile: str = "dev"
    seed: int = 0
    coverage: dict[str, Coverage] = attrs.field(factory=dict)
    results: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    #: Specs this target was already checked against (once per session, not per example).
    checked: set[str] = attrs.field(factory=set)
    #: When the machine now running started (``run_machine`` sets it).
    started: float = attrs.field(factory=time.perf_counter)
    #: Where the live status goes (nowhere by default; the pytest plugin sets it).
    progress: Progress = attrs.field(factory=Progress)
    #: Sequential machines of a ``transaction_safe`` target share one warm backend,
    #: each example one transaction rolled back at its end (``bench`` turns it off to
    #: measure the cold path beside it).
    warm_examples: bool = True
    #: Sequential machines' connections wait without the event loop.
    blocking_client: bool = True
    _warm: WarmBackend | None = attrs.field(default=None, init=False, repr=False)

    def warm_backend(self) -> WarmBackend:
        """The warm backend, made on first use; closed with the environment or its pool."""
        if self._warm is None:
            self._warm = WarmBackend(self.pool, session_options())
            self.pool.at_close(self.close)
        return self._warm

    def close(self) -> None:
        """Close the warm backend, if any. Idempotent."""
        warm, self._warm = self._warm, None
        if warm is not None:
            warm.close()

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
    #: ``outcome`` with no value cut (traces keep it for the page), when known.
    full_outcome: str | None = None

    def describe(self) -> str:
        shown = ", ".join(repr(a) for a in self.args)
        return f"{self.number:>3}. [c{self.connection}] {self.operation}({shown}) -> {self.outcome}"


class DifferentialMachine(RuleBasedStateMachine):
    """Base class: owns the event loop, the example's database and its connections."""

    #: The kind of system this machine checks; a suite's base machine sets it.
    spec: ClassVar[Spec[Any, Any]]
    #: Sequential machines hold MONOTONIC opaque values to creation order; interleaved
    #: ones cannot (commit order is not creation order).
    monotonic_pks: ClassVar[bool] = True
    #: The rule Hypothesis is running now (coverage counts per rule, see ``run``).
    current_rule: str = "outside a rule"
    #: One statement at a time on one connection: the client may block while it waits
    #: (:mod:`modelcheck._postgres.blocking`) and, for a ``transaction_safe`` target,
    #: examples may share a warm backend. Interleaved machines set it False.
    sequential: ClassVar[bool] = True
    #: Scenario rules every example opens with, in this order, each run or skipped by
    #: a draw (:mod:`modelcheck._opening`): a short run reaches every scenario.
    opening_rules: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Make each rule this class defines say its name while it runs, so ``run`` can
        count coverage per rule (no frame inspection)."""
        super().__init_subclass__(**kwargs)
        for name, value in vars(cls).items():
            for marker in ("hypothesis_stateful_rule", "hypothesis_stateful_initialize_rule"):
                found = getattr(value, marker, None)
                if found is not None and not getattr(found.function, "_names_rule", False):
                    found.function = _naming(name, found.function)
        check_opening(cls, cls.opening_rules)

    def __init__(self, environment: MachineEnvironment) -> None:
        super().__init__()
        self.environment = environment
        self.target = environment.target
        spec = machine_spec(type(self))
        if spec.name not in environment.checked:
            declared = getattr(self.target, "spec", None)
            if isinstance(declared, Spec) and declared.name != spec.name:
                raise InvalidDefinition(
                    f"Target {self.target.name!r} implements spec {declared.name!r}, but "
                    f"{type(self).__qualname__} checks spec {spec.name!r}. To fix this, run "
                    "the machines of the target's own suite."
                )
            check_target(spec, self.target)
            environment.checked.add(spec.name)
        self.capabilities: Capabilities = capabilities_of(self.target)
        self.model: Any = spec.initial_model()
        self.steps: list[Step] = []
        self._visited: dict[str, set[Any]] = {}  # draw_unvisited's rounds, per example
        self._opening: st.DataObject | None = None
        self.coverage = environment.coverage.setdefault(type(self).__name__, Coverage())
        self.coverage.examples += 1
        self.coverage.follow("example")
        self.ticked()
        self._cleanup = contextlib.ExitStack()
        self.warm = environment.warm_backend() if self.runs_warm() else None
        try:
            if self.warm is not None:
                self.loop = self.warm.loop
                self._cleanup.callback(self.warm.end)
                self.conn: psycopg.AsyncConnection[Any] = self.warm.begin()
                assert self.warm.database is not None
                self.database: CleanDatabase = self.warm.database
            else:
                self.loop = asyncio.new_event_loop()
                self._cleanup.callback(self.loop.close)
                self.database = self._cleanup.enter_context(environment.pool.database())
                self.conn = self.connect()
            self.check_state()
        except BaseException:
            self._cleanup.close()
            raise

    # -- the opening ---------------------------------------------------------------------

    @initialize(data=st.data())
    def opening(self, data: st.DataObject) -> None:
        """Open the example with the ``opening_rules`` (now, or once the machine is
        ready: an interleaved machine needs its sessions first)."""
        self._opening = data
        self.run_opening()

    def ready_for_opening(self) -> bool:
        """Whether the opening scenarios can run (an interleaved machine: sessions open)."""
        return True

    def run_opening(self) -> None:
        """Run the opening once, when both its draw and the machine are ready."""
        if self._opening is None or not self.ready_for_opening():
            return
        data, self._opening = self._opening, None
        if self.opening_rules:
            run_opening(self, self.opening_rules, data)

    # -- resources -----------------------------------------------------------------

    def runs_warm(self) -> bool:
        """Whether this example runs in one transaction on the environment's warm backend."""
        return (
            self.sequential
            and self.environment.warm_examples
            and self.capabilities.transaction_safe
        )

    def connect(self, *, autocommit: bool = True) -> psycopg.AsyncConnection[Any]:
        """A new connection to this example's database, closed at teardown."""
        kind = psycopg.AsyncConnection
        if self.sequential and self.environment.blocking_client:
            kind = BlockingAsyncConnection
        try:
            conn = self.loop.run_until_complete(
                kind.connect(self.database.dsn, autocommit=autocommit, options=session_options())
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

    def ticked(self) -> None:
        """A step or an example was counted: let the progress line know."""
        done = self.coverage
        failed = done.first_failure_s is not None
        self.environment.progress.tick(type(self).__name__, done.examples, done.steps, failed)

    def count(self, outcome: str) -> None:
        """Count an outcome in the coverage report and as a Hypothesis ``event()``, so
        ``--hypothesis-show-statistics`` shows how often each one happened."""
        self.coverage.outcomes[outcome] += 1
        self.coverage.follow(outcome)
        if hypothesis.currently_in_test_context():
            hypothesis.event(outcome)

    def input(self, data: st.DataObject, name: str, default: st.SearchStrategy[Any]) -> Any:
        """Draw the named input, narrowed when the target declares narrower inputs."""
        return data.draw(self.capabilities.inputs.get(name, default), label=name)

    def draw_unvisited(
        self, data: st.DataObject, options: Sequence[T], label: str, *, report: bool = True
    ) -> T:
        """One of ``options``: the first one at or after a drawn position (cyclically)
        that this example has not drawn under ``label`` yet; any once all have been.

        A short run draws a scenario's variants very unevenly (a ``dev`` run raced
        commits five times and deletes never), so a bug that only one variant reaches
        survives by luck of the seed. Within an example this visits every variant
        before repeating one; the position is an ordinary draw, so a lone call picks
        ``options[i]`` and shrinks towards ``options[0]``. The coverage report counts
        what was drawn per label (``report=False``: options too long to print)."""
        if not options:
            raise ValueError(f"draw_unvisited({label!r}): no options to draw from")
        visited = self._visited.setdefault(label, set())
        if len(visited) >= len(set(options)):
            visited.clear()  # every option had its turn: a new round
        start = data.draw(st.integers(0, len(options) - 1), label=label)
        for offset in range(len(options)):
            option = options[(start + offset) % len(options)]
            if option not in visited:
                visited.add(option)
                if report:
                    drawn = self.coverage.choices.setdefault(label, collections.Counter())
                    drawn[_choice_name(option)] += 1
                return option
        raise AssertionError("unreachable: the round was reset above")

    def contended(self, live: Iterable[str]) -> tuple[int, list[str]] | None:
        """A free connection other than one whose open transaction locked some of the
        ``live`` keys, and those keys (a write to them must wait); None when there is no
        such pair, and always on a sequential machine."""
        sessions: list[Any] = getattr(self, "sessions", [])
        wanted = set(live)
        for holder in sessions:
            txn = holder.txn
            if txn is None or txn.aborted or holder.pending is not None:
                continue
            locked = sorted(self.locked_keys(txn) & wanted)  # type: ignore[attr-defined]
            free = [s.index for s in sessions if s.pending is None and s is not holder]
            if locked and free:
                return free[0], locked
        return None

    def supports(self, operation: str) -> bool:
        return operation not in self.capabilities.unsupported

    def run(self, operation: str, *args: Any) -> Any:
        """Run one operation on both sides, compare results, then compare full state.

        Returns the model's result, or None when either side failed or the target
        does not support the operation (the rule is then counted as skipped).
        """
        __tracebackhide__ = True  # pytest: not the user's frame
        row = self.spec.operation(operation)
        rule_name = self.current_rule
        if not self.supports(operation):
            self.coverage.skipped[rule_name] += 1
            return None
        number = len(self.steps) + 1
        # Coverage is per rule: the rule is the function that called run().
        self.coverage.rules[rule_name] += 1
        self.coverage.steps += 1
        self.ticked()
        expected: Any = None
        expected_error: OperationError | None = None
        try:
            expected = self.spec.apply(self.model, operation, args)
        except OperationError as error:
            expected_error = error
        actual: Any = None
        actual_error: OperationError | None = None
        try:
            actual = self.await_(self.operate(operation, args))
        except OperationError as error:
            actual_error = error
        except psycopg.Error as error:
            actual_error = classify(self.spec, self.target, error)
        outcome = (
            f"error {actual_error.sqlstate} {actual_error.kind}" if actual_error else _short(actual)
        )
        self.count(f"{operation}: {'error ' + actual_error.kind if actual_error else 'ok'}")
        whole = outcome if actual_error else repr(actual)
        step = Step(number, 0, operation, args, outcome, full_outcome=whole)
        self.steps.append(step)
        note_step(step.describe())
        self.coverage.describe(step.describe())
        problems = compare_outcome(
            expected, expected_error, actual, actual_error, row.compare, args
        )
        if not problems and expected_error is None and actual_error is None:
            problems = self.learn(row.opaque(actual, args), required=True)
        if problems:
            uncut = compare_outcome(
                expected, expected_error, actual, actual_error, row.compare, args, width=None
            )
            full = "\n".join(f"  {p}" for p in uncut) if uncut else None  # else laws: not cut
            self.fail(step, "\n".join(f"  {p}" for p in problems), full_detail=full)
        self.check_state(step)
        return expected if expected_error is None else None

    async def operate(self, operation: str, args: tuple[Any, ...]) -> Any:
        """The target's operation on this machine's connection; on a warm backend, after
        a savepoint it is rolled back to when the operation fails (autocommit's undo)."""
        call = getattr(self.target, operation)
        warm = self.warm
        if warm is None:
            return await call(self.conn, *args)
        await warm.before_operation(self.conn)
        try:
            return await call(self.conn, *args)
        finally:
            await warm.after_operation(self.conn)

    def learn(
        self, values: Iterable[Opaque], model: Any = None, *, required: bool = False
    ) -> list[str]:
        """Bind opaque values into the model's bindings; the laws each one breaks.
        ``required``: they come from a result, which must carry every one."""
        bindings = self.spec.bindings(self.model if model is None else model)
        problems = []
        for value in values:
            broken = bindings.learn(value, sequential=self.monotonic_pks, required=required)
            if broken is not None:
                problems.append(f"opaque value broke a law: {broken}")
        return problems

    def check_state(self, step: Step | None = None) -> None:
        """Compare the model's expected state with the database's committed state."""
        __tracebackhide__ = True  # pytest: not the user's frame
        db = self.read_state()
        problems = self.learn(self.spec.state_opaque(self.model, db))
        model = self.compared(self.spec.expected(self.model, full=True))
        db = self.compared(db)
        if problems or model != db:
            laws = "".join(f"  {p}\n" for p in problems)
            whole = laws + diff.render(model, db, limit=None, width=None)
            self.fail(step, laws + diff.render(model, db), "state differs", full_detail=whole)

    def compared(self, state: Any) -> Any:
        """``state`` without the fields the target does not keep (shown as not compared)."""
        paths = self.capabilities.not_compared
        return project(state, paths) if paths else state

    def read_state(
        self, *, full: bool = True, conn: psycopg.AsyncConnection[Any] | None = None
    ) -> Any:
        return self.await_(observe(self.spec, self.target, conn or self.conn, full=full))

    def fail(
        self,
        step: Step | None,
        detail: str,
        heading: str = "result differs",
        *,
        full_detail: str | None = None,
    ) -> None:
        __tracebackhide__ = True  # pytest: not the user's frame
        history = "\n".join(s.describe() for s in self.steps[-30:])
        title = f"steps (model vs {self.target.name})"
        self.raise_mismatch(step, heading, detail, title, history, full_detail=full_detail)

    def raise_mismatch(
        self,
        step: Step | None,
        heading: str,
        detail: str,
        title: str,
        history: str,
        *,
        full_detail: str | None = None,
    ) -> None:
        """Write the trace, then raise the failure as data (:class:`Mismatch`).
        ``full_detail``: the detail with no value cut, for the trace (the page shows it)."""
        __tracebackhide__ = True  # pytest: not the user's frame
        from modelcheck._traces import trace as _trace

        where = f"after step {step.number}: {step.operation}" if step else "at the start"
        if self.coverage.first_failure_s is None:
            self.coverage.first_failure_s = time.perf_counter() - self.environment.started
        trace = _trace.record_failure(self, step, heading, where, detail, full_detail)
        failure = Mismatch(
            heading=heading,
            where=where,
            machine=type(self).__name__,
            target=self.target.name,
            detail=detail,
            step=step.number if step else None,
            connection=step.connection if step else None,
            step_count=len(self.steps),
            history_title=title,
            history=history,
            trace=None if trace is None else str(trace),
            replay=_trace.replay_command(trace) if trace else replay_hint(),
        )
        _trace.store_message(trace, failure.render())
        raise StateMismatch(failure)

    # -- running under pytest ------------------------------------------------------------

    @classmethod
    def pytest_test(cls) -> Callable[..., None]:
        """A pytest test function running this machine with the session's environment.

        The machine's definition is checked here, when pytest collects the module: it
        names a spec, and every ``self.run("<operation>", ...)`` in its rules names an
        operation of that spec.
        """
        check_rules(cls, machine_spec(cls))

        def test(modelcheck_environments: Any) -> None:
            __tracebackhide__ = True  # pytest: not the user's frame
            run_machine(cls, modelcheck_environments.for_machine(cls))

        test.__name__ = f"test_{_snake(cls.__name__)}"
        test.__qualname__ = test.__name__
        # Hypothesis's pytest plugin then treats it as a Hypothesis test: statistics
        # for --hypothesis-show-statistics (our event()s), its report section.
        test.is_hypothesis_test = True  # type: ignore[attr-defined]
        # The fuzz form (modelcheck._fuzz, `nox -s fuzz`) finds the machine here.
        test.modelcheck_machine = cls  # type: ignore[attr-defined]
        return test


def run_machine(
    machine: type[DifferentialMachine],
    environment: MachineEnvironment,
    settings: hypothesis.settings | None = None,
) -> None:
    """Run one machine under the environment's seed; record its result for the report."""
    __tracebackhide__ = True  # pytest: not the user's frame
    name = machine.__name__
    coverage = environment.coverage.setdefault(name, Coverage())
    print(f"\nmodelcheck: {name} on {environment.target.name}, seed={environment.seed}")
    factory = hypothesis.seed(environment.seed)(machine_factory(machine, environment))
    started = environment.started = time.perf_counter()
    coverage.first_failure_s = None
    trail_log = os.environ.get(TRAIL_LOG_ENV)
    if trail_log and coverage.log is None:
        Path(trail_log).mkdir(parents=True, exist_ok=True)
        coverage.log = (Path(trail_log) / f"{name}.trail").open("w", encoding="utf-8")
    result: dict[str, Any] = {
        "outcome": "passed",
        "seed": environment.seed,
        "target": environment.target.name,
    }
    try:
        run_state_machine_as_test(factory, settings=settings)  # type: ignore[arg-type]
    except BaseException as exc:
        # Ctrl-C (or weekly's budget) is neither a pass nor a failure of the target.
        outcome = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
        result.update(outcome=outcome, failure=str(exc), error=type(exc).__name__)
        if isinstance(exc, StateMismatch):
            result["mismatch"] = attrs.asdict(exc.failure)
            # The user's rule and the mismatch, not forty lines of Hypothesis's runner.
            raise exc.with_traceback(_rule_frames(exc.__traceback__)) from None
        raise
    finally:
        first = coverage.first_failure_s
        result.update(
            first_failure_s=None if first is None else round(first, 3),
            duration_s=round(time.perf_counter() - started, 3),
            examples=coverage.examples,
            steps=coverage.steps,
            rules=dict(coverage.rules),
            outcomes=dict(coverage.outcomes),
            trail=coverage.trail_digest(),
            preconditions={k: dict(v) for k, v in coverage.preconditions.items()},
        )
        environment.results[name] = result
        if coverage.log is not None:
            coverage.log.close()
            coverage.log = None
        environment.progress.done()  # the coverage table itself is in pytest's summary
    skipped = sorted(set(coverage.skipped) - set(coverage.rules))
    if skipped:
        print(f"{name}: rules skipped, their operations unsupported: {', '.join(skipped)}")
        result["rules_unsupported"] = skipped
    never = sorted(
        rule_names(machine) - set(coverage.rules) - set(coverage.skipped) - {"start_on_main"}
    )
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


def machine_factory(
    machine: type[DifferentialMachine], environment: MachineEnvironment
) -> Callable[[], DifferentialMachine]:
    """What ``run_state_machine_as_test`` builds each example from.

    Hypothesis keys a stateful test's saved examples on the factory's source; every
    factory here is the same lambda, so without an extra digest all machines shared one
    key and replayed each other's examples. The digest names the machine and target.
    """

    def factory() -> DifferentialMachine:
        return machine(environment)

    key = f"{machine.__module__}.{machine.__qualname__} on {environment.target.name}"
    factory._hypothesis_internal_add_digest = key.encode()  # type: ignore[attr-defined]
    return factory


_HYPOTHESIS_DIR: Final = os.path.dirname(hypothesis.__file__)


def _rule_frames(tb: types.TracebackType | None) -> types.TracebackType | None:
    """The traceback without Hypothesis's frames and without frames that hide
    themselves (``__tracebackhide__``): what is left is the rule that failed."""
    kept: list[types.TracebackType] = []
    while tb is not None:
        frame = tb.tb_frame
        inside = frame.f_code.co_filename.startswith(_HYPOTHESIS_DIR)
        if not inside and not frame.f_locals.get("__tracebackhide__"):
            kept.append(tb)
        tb = tb.tb_next
    rebuilt: types.TracebackType | None = None
    for entry in reversed(kept):
        rebuilt = types.TracebackType(rebuilt, entry.tb_frame, entry.tb_lasti, entry.tb_lineno)
    return rebuilt


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


def _choice_name(option: Any) -> str:
    """How the coverage report names a drawn option (tuples joined by '/')."""
    if isinstance(option, tuple):
        return "/".join(_choice_name(part) for part in option)
    return option.decode() if isinstance(option, bytes) else str(option)


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _short(value: Any, width: int | None = 160) -> str:
    text = repr(value)
    return text if width is None or len(text) < width else text[: width - 1] + "…"


def _err(error: OperationError | None) -> str:
    assert error is not None
    return f"{error.sqlstate} {error.kind} ({error.message})"


def _naming(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)
    def rule(self: DifferentialMachine, *args: Any, **kwargs: Any) -> Any:
        __tracebackhide__ = True  # pytest: not the user's frame
        outer, self.current_rule = self.current_rule, name
        self.coverage.follow(f"rule {name}")
        try:
            return function(self, *args, **kwargs)
        finally:
            self.current_rule = outer

    rule._names_rule = True  # type: ignore[attr-defined]
    return rule


def machine_spec(machine: type[RuleBasedStateMachine]) -> Spec[Any, Any]:
    """The spec a machine class checks, or a definition error naming the fix."""
    spec = getattr(machine, "spec", None)
    if not isinstance(spec, Spec):
        raise InvalidDefinition(
            f"{machine.__qualname__} names no spec. To fix this, either: mix in a suite's "
            "rules (e.g. modelcheck.BranchRules), or set `spec = YourSpec()` on the class."
        )
    return spec


def check_rules(machine: type[RuleBasedStateMachine], spec: Spec[Any, Any]) -> None:
    """Every literal operation name a rule (or helper) of ``machine`` passes to
    ``self.run`` must be in the spec; raises :class:`InvalidDefinition` naming it."""
    for klass in machine.__mro__:
        if klass.__module__.startswith(("hypothesis", "builtins")):
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError):
            continue  # no source (e.g. built in a REPL): checked at the first call
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "run"
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "self"
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
                and node.args[0].value not in spec.operations
            ):
                raise InvalidDefinition(
                    f"{klass.__qualname__} runs operation {node.args[0].value!r}, which spec "
                    f"{spec.name!r} does not have (it has: {', '.join(sorted(spec.operations))}"
                    "). To fix this, either: add an Operation row to the spec, or call one "
                    "of those."
                )


def compare_outcome(
    expected: Any,
    expected_error: OperationError | None,
    actual: Any,
    actual_error: OperationError | None,
    compare: Callable[[Any, Any, tuple[Any, ...]], Iterable[str]],
    args: tuple[Any, ...],
    width: int | None = 160,
) -> list[str]:
    """How the model's outcome and the target's differ: errors by (SQLSTATE, kind),
    results by the operation's comparison. Empty when they agree. Results are cut at
    ``width`` characters (``None``: whole, as a trace keeps them)."""
    if expected_error is not None or actual_error is not None:
        if expected_error is None:
            return [f"model: ok {_short(expected, width)}", f"db:    error {_err(actual_error)}"]
        if actual_error is None:
            return [f"model: error {_err(expected_error)}", f"db:    ok {_short(actual, width)}"]
        if expected_error.outcome != actual_error.outcome:
            return [f"model: error {_err(expected_error)}", f"db:    error {_err(actual_error)}"]
        return []
    return list(compare(expected, actual, args))
