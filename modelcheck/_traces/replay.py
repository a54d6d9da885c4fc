"""Replay a failure trace against a fresh database, without Hypothesis.

The recorded steps are re-run in order on a fresh machine instance: sequential
machines through ``machine.run(operation, *args)``, interleaved ones with the same
connection switches, ``BEGIN``s, commits and rollbacks. The machine's own checks
then fail (or not) exactly where they failed before::

    result = replay_file(".modelcheck/traces/CommitMachine-reference-1234.json", server)
    assert result.reproduced, result.report()
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Mapping
from typing import Any, Final

import attrs

from modelcheck._postgres.isolation import DatabasePool
from modelcheck._postgres.server import EmbeddedServer, ExternalServer
from modelcheck._targets import resolve_target
from modelcheck._traces import trace as _trace
from modelcheck.errors import StateMismatch, TraceError
from modelcheck.machine import (
    SESSION_SETTINGS,
    DifferentialMachine,
    MachineEnvironment,
    installer_for,
)

#: Exit codes of ``python -m modelcheck replay``.
EXIT_FIXED = 0
EXIT_REPRODUCED = 1
EXIT_DIFFERENT = 3


@attrs.frozen
class ReplayResult:
    """What a replay observed, compared with what the trace recorded."""

    trace: Mapping[str, Any]
    failures: tuple[_trace.Failure, ...]
    error: BaseException | None = None
    steps_run: int = 0

    @property
    def failure(self) -> _trace.Failure | None:
        return self.failures[0] if self.failures else None

    @property
    def passed(self) -> bool:
        """No check failed and nothing else went wrong: the bug is gone."""
        return self.failure is None and self.error is None

    @property
    def reproduced(self) -> bool:
        """The same failure, at the same step, with the identical diff."""
        recorded = self.trace["failure"]
        failure = self.failure
        return (
            failure is not None
            and comparable(failure.detail) == comparable(recorded["detail"])
            and failure.where == recorded["where"]
        )

    @property
    def exit_code(self) -> int:
        if self.passed:
            return EXIT_FIXED
        return EXIT_REPRODUCED if self.reproduced else EXIT_DIFFERENT

    def report(self) -> str:
        """What the user reads: the verdict, then the diff."""
        trace = self.trace
        head = (
            f"replayed {self.steps_run}/{len(trace['steps'])} steps of "
            f"{trace['machine']['qualname']} on target {trace['target']['name']!r} "
            f"(recorded with seed {trace['seed']}, profile {trace['profile']})"
        )
        if self.passed:
            return (
                f"{head}\nFIXED: every step agrees with the model now "
                f"(recorded failure: {trace['failure']['heading']} {trace['failure']['where']})."
            )
        if self.error is not None:
            return f"{head}\nERROR: {type(self.error).__name__}: {self.error}"
        failure = self.failure
        assert failure is not None
        verdict = "REPRODUCED" if self.reproduced else "DIFFERENT FAILURE"
        text = f"{head}\n{verdict}: {failure.heading} {failure.where}\n{failure.detail}"
        if not self.reproduced:
            recorded = trace["failure"]
            text += f"\n(recorded: {recorded['heading']} {recorded['where']}\n"
            text += f"{recorded['detail']})"
        return text


_UUID: Final = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def comparable(detail: str) -> str:
    """A diff with the database's random UUIDs masked: the rest must match exactly."""
    return _UUID.sub("<uuid>", detail)


def check_target(trace: Mapping[str, Any], spec: str | None = None) -> Any:
    """The trace's target, resolved from its spec; a different target is an error."""
    recorded = trace["target"]
    target = resolve_target(spec or recorded["spec"])
    if target.name != recorded["name"]:
        raise TraceError(
            f"The trace was recorded against target {recorded['name']!r} "
            f"(spec {recorded['spec']!r}), but {spec or recorded['spec']!r} gives target "
            f"{target.name!r}. To fix this, either: replay without --target (the trace's "
            "own spec is used), or re-run the machine against the other target to get its "
            "own trace."
        )
    return target


def replay(
    trace: Mapping[str, Any],
    server: EmbeddedServer | ExternalServer,
    *,
    target_spec: str | None = None,
    pool: DatabasePool | None = None,
) -> ReplayResult:
    """Re-run a trace's steps on a fresh database of ``server`` (from ``pool`` when
    given: the minimiser replays many candidates of one trace on one pool)."""
    target = check_target(trace, target_spec)
    machine_class = _trace.load_machine(trace)
    steps = {step["number"]: step for step in trace["steps"]}
    error: BaseException | None = None
    ran = 0
    with contextlib.ExitStack() as stack:
        if pool is None:
            pool = stack.enter_context(
                DatabasePool(server, installer_for(target), settings=SESSION_SETTINGS)
            )
        failures = stack.enter_context(_trace.replaying())
        environment = MachineEnvironment(target, pool, trace["profile"], seed=trace["seed"])
        machine: DifferentialMachine | None = None
        try:
            machine = machine_class(environment)
            if trace["machine"]["interleaved"]:
                ran = _run_interleaved(machine, trace, steps)
            else:
                for number in sorted(steps):
                    step = steps[number]
                    machine.run(step["operation"], *_trace.decode(step["args"]))
                    ran += 1
        except StateMismatch:
            pass  # recorded in ``failures`` by fail()
        except Exception as exc:
            error = exc
        finally:
            if machine is not None:
                with contextlib.suppress(Exception):
                    machine.teardown()
            # A shared pool (the minimiser's) outlives this replay: its warm backend not.
            environment.close()
    if failures:
        ran = failures[0].step or ran
    return ReplayResult(trace, tuple(failures), error if not failures else None, ran)


def _run_interleaved(
    machine: DifferentialMachine, trace: Mapping[str, Any], steps: Mapping[int, Any]
) -> int:
    from modelcheck.interleaving import InterleavedMachine

    if not isinstance(machine, InterleavedMachine):
        raise TraceError(
            f"The trace says {trace['machine']['qualname']} is interleaved, but it is not an "
            "InterleavedMachine any more. To fix this, re-run the machine for a new trace."
        )
    machine.open_connections(trace["connections"])
    ran = 0
    for event in trace["events"]:
        if event["event"] == "begin":
            machine.current = event["connection"]
            machine._begin(event["level"])
            continue
        step = steps[event["number"]]
        machine.current = step["connection"]
        if step["transaction"]:
            if step["operation"] == "commit":
                machine.commit_transaction()
            else:
                machine.rollback_transaction()
        else:
            machine.run(step["operation"], *_trace.decode(step["args"]))
        ran += 1
    return ran


def replay_file(
    path: str | os.PathLike[str],
    server: EmbeddedServer | ExternalServer,
    *,
    target_spec: str | None = None,
) -> ReplayResult:
    """Load and replay one trace file."""
    return replay(_trace.load(path), server, target_spec=target_spec)


__all__ = ["ReplayResult", "check_target", "replay", "replay_file"]
