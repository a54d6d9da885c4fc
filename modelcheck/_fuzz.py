"""The machines under HypoFuzz: a fuzz form of each machine, and a time-boxed runner.

HypoFuzz (``hypothesis fuzz``) collects tests through pytest and fuzzes those that
are ``@given`` tests (it needs ``test.hypothesis.inner_test``). A machine's
``pytest_test()`` is a plain function that calls ``run_state_machine_as_test``
itself, so HypoFuzz cannot drive it. Loaded as a pytest plugin
(``-p modelcheck._fuzz``), this module collects each such test as its *fuzz form*:
``@given(st.data())``, one example of the machine per call, nothing else changed.
``nox -s stateful`` never loads it.

All examples of one process share one server and its database pools
(:class:`FuzzSession`): HypoFuzz tears down even session fixtures whenever a worker
switches tests, and its workers exit without tearing them down at all. The session
is closed when the process exits (``atexit`` and multiprocessing's exit hook), and
each process writes its counts to ``$MODELCHECK_FUZZ_REPORTS/fuzz-<pid>.json``.

HypoFuzz runs until stopped; :func:`run_fuzz` gives it a time budget and then stops
its process group (SIGINT, then SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import multiprocessing.util
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import attrs
import hypothesis
import pytest
from hypothesis import strategies as st
from hypothesis.stateful import get_state_machine_test

from modelcheck._config import Config
from modelcheck._machine_fixtures import SEED_KEY, Environments
from modelcheck._postgres.server import EmbeddedServer, ExternalServer, open_server
from modelcheck.errors import StateMismatch
from modelcheck.machine import DifferentialMachine, MachineEnvironment
from modelcheck.plugin import get_config

#: Directory where each fuzzing process writes ``fuzz-<pid>.json``.
ENV_REPORTS: Final = "MODELCHECK_FUZZ_REPORTS"
#: A process rewrites its report at most this often (and once more when it closes).
REPORT_INTERVAL_S: Final = 5.0
#: After SIGINT the workers get this long to close their servers; then SIGTERM, SIGKILL.
GRACE_S: Final = 30.0
#: The pytest options every fuzz run passes (this plugin; no cache directory).
PLUGIN_ARGS: Final = ("-p", "modelcheck._fuzz", "-p", "no:cacheprovider")

# ------------------------------------------------------------------- the fuzz form


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(
    collector: pytest.Module | pytest.Class, name: str, obj: object
) -> list[pytest.Function] | None:
    """Collect ``test_x = Machine.pytest_test()`` as the machine's fuzz form."""
    machine = getattr(obj, "modelcheck_machine", None)
    if machine is None or not collector.funcnamefilter(name):
        return None
    return [pytest.Function.from_parent(collector, name=name, callobj=fuzz_test(machine))]


def fuzz_test(machine: type[DifferentialMachine]) -> Callable[..., None]:
    """A ``@given`` test running one example of ``machine`` per call.

    The example is the body of the test ``run_state_machine_as_test`` runs, on the
    same ``st.data()``, so HypoFuzz mutates the rule sequence like Hypothesis would.
    It is built here, at collection: ``@given`` inside a running test is a nested test.
    """
    slot = _Slot()
    # Any factory works (run_state_machine_as_test takes one too); typed as a class.
    factory: Any = lambda: machine(slot.current())  # noqa: E731
    example = get_state_machine_test(factory).hypothesis.inner_test  # type: ignore[attr-defined]

    @hypothesis.given(data=st.data())
    def test(pytestconfig: pytest.Config, data: st.DataObject) -> None:
        __tracebackhide__ = True  # pytest: not the user's frame
        session = session_for(pytestconfig)
        slot.environment = session.environment(machine)
        session.run_example(machine, example, data)

    test.__name__ = test.__qualname__ = f"fuzz_{machine.__name__}"
    return test


@attrs.define
class _Slot:
    """The environment of the example about to run (set just before each call)."""

    environment: MachineEnvironment | None = None

    def current(self) -> MachineEnvironment:
        assert self.environment is not None, "set by the fuzz test before each example"
        return self.environment


# ---------------------------------------------------------------- one process's run


@attrs.define
class _Failures:
    examples: int = 0
    traces: set[str] = attrs.field(factory=set)


class FuzzSession:
    """One process's server, pools and counts, shared by every example it runs."""

    def __init__(self, config: Config, seed: int, report_dir: Path | None) -> None:
        self.config = config
        self.seed = seed
        self.report_dir = report_dir
        self._server: EmbeddedServer | ExternalServer | None = None
        self._environments: Environments | None = None
        self._failures: dict[str, _Failures] = {}
        self._written = 0.0
        self._closed = False
        self._lock = threading.Lock()
        #: The runner's stop signal arrived: what fails from now on was cut short.
        self.interrupted = False
        self._watch_for_interrupt()

    def _watch_for_interrupt(self) -> None:
        """Remember a SIGINT before it raises KeyboardInterrupt. The runner stops a
        fuzz run with SIGINT; raised in the middle of an example, the KeyboardInterrupt
        can leave a statement running on a connection or a task on the event loop, so
        the example's cleanup fails with an ordinary error that replaces it. Counting
        that as a failing example was a false alarm."""
        if threading.current_thread() is not threading.main_thread():
            return
        previous = signal.getsignal(signal.SIGINT)

        def on_interrupt(signum: int, frame: Any) -> None:
            self.interrupted = True
            if callable(previous):
                previous(signum, frame)
            elif previous != signal.SIG_IGN:
                raise KeyboardInterrupt

        signal.signal(signal.SIGINT, on_interrupt)

    def environment(self, machine: type[DifferentialMachine]) -> MachineEnvironment:
        """The machine's environment; the server and its pools start on first use."""
        if self._closed:
            raise RuntimeError("this fuzz session is closed")
        if self._environments is None:
            self._server = open_server(self.config)
            self._environments = Environments(self.config, self._server, self.seed)
        return self._environments.for_machine(machine)

    def run_example(
        self,
        machine: type[DifferentialMachine],
        example: Callable[[st.DataObject], None],
        data: st.DataObject,
    ) -> None:
        """Run one example drawn from ``data``; count it when it fails."""
        __tracebackhide__ = True
        try:
            example(data)
        except Exception as exc:
            if self.interrupted:
                # Not a verdict about the target: the run is being stopped. A
                # KeyboardInterrupt ends it in HypoFuzz too, with nothing to shrink.
                print(
                    f"modelcheck fuzz: {machine.__name__}: an example cut short by the "
                    f"stop signal ended in {type(exc).__name__}: {exc}; not counted",
                    file=sys.stderr,
                )
                raise KeyboardInterrupt from exc
            failed = self._failures.setdefault(machine.__name__, _Failures())
            failed.examples += 1
            if isinstance(exc, StateMismatch) and exc.failure.trace:
                failed.traces.add(exc.failure.trace)
            raise
        finally:
            if time.monotonic() - self._written >= REPORT_INTERVAL_S:
                self.write_report()

    def report(self) -> dict[str, Any]:
        """Per machine: examples, checked steps, rule runs, failing examples, traces."""
        machines: dict[str, Any] = {}
        environments = self._environments
        for environment in environments.by_target.values() if environments else ():
            for name, coverage in environment.coverage.items():
                failed = self._failures.get(name, _Failures())
                machines[name] = {
                    "target": environment.target.name,
                    "examples": coverage.examples,
                    "steps": coverage.steps,
                    "rules": dict(coverage.rules),
                    "failing_examples": failed.examples,
                    "traces": sorted(failed.traces),
                }
        return {"pid": os.getpid(), "closed": self._closed, "machines": machines}

    def write_report(self) -> None:
        """Replace this process's report file (atomically: a reader never sees half)."""
        self._written = time.monotonic()
        if self.report_dir is None:
            return
        path = self.report_dir / f"fuzz-{os.getpid()}.json"
        with contextlib.suppress(OSError):
            self.report_dir.mkdir(parents=True, exist_ok=True)
            partial = path.with_suffix(".part")
            partial.write_text(json.dumps(self.report(), indent=1) + "\n", encoding="utf-8")
            partial.replace(path)

    def close(self) -> None:
        """Drop the pools' databases, stop the server, write the final report. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                if self._environments is not None:
                    self._environments.close()
            finally:
                if self._server is not None:
                    self._server.close()
                self.write_report()


_sessions: dict[tuple[int, Config], FuzzSession] = {}


def session_for(pytestconfig: pytest.Config) -> FuzzSession:
    """This process's session for the run's config, created on first use.

    Keyed by pid too: a forked child must never use its parent's server.
    """
    config = get_config(pytestconfig)
    key = (os.getpid(), config)
    session = _sessions.get(key)
    if session is None:
        reports = os.environ.get(ENV_REPORTS)
        session = FuzzSession(
            config, pytestconfig.stash[SEED_KEY], Path(reports) if reports else None
        )
        _sessions[key] = session
        # HypoFuzz's workers are multiprocessing children: they skip atexit, but run
        # multiprocessing's finalizers, on a normal exit and after KeyboardInterrupt.
        atexit.register(session.close)
        multiprocessing.util.Finalize(None, session.close, exitpriority=10)
    return session


# ---------------------------------------------------------------------- the runner


@attrs.frozen
class FuzzRun:
    """What ``nox -s fuzz`` / ``python -m modelcheck fuzz`` runs."""

    duration_s: float
    example_db: Path
    traces: Path
    workers: int = 1
    dashboard: bool = True
    port: int = 9999
    profile: str | None = None
    target: str | None = None
    report: Path | None = None
    #: Which tests to fuzz, as pytest arguments (default: every machine).
    pytest_args: tuple[str, ...] = ()


def command(run: FuzzRun) -> list[str]:
    """The ``hypothesis fuzz`` command line, run by this interpreter."""
    argv = [
        sys.executable,
        "-c",
        "import sys; from hypothesis.extra.cli import main; sys.exit(main())",
        "fuzz",
        "-n",
        str(run.workers),
    ]
    argv += (
        ["--host", "localhost", "--port", str(run.port)] if run.dashboard else ["--no-dashboard"]
    )
    pytest_args = [
        *PLUGIN_ARGS,
        f"--modelcheck-example-db={run.example_db}",
        f"--modelcheck-traces={run.traces}",
    ]
    if run.profile:
        pytest_args.append(f"--modelcheck-profile={run.profile}")
    if run.target:
        pytest_args.append(f"--modelcheck-target={run.target}")
    return [*argv, "--", *pytest_args, *(run.pytest_args or ("machines",))]


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _wait_group(process: subprocess.Popen[bytes], timeout_s: float) -> bool:
    """Wait until no process of HypoFuzz's group is left; False if some still are.

    The group leader is reaped here: a zombie would still count as a member."""
    deadline = time.monotonic() + timeout_s
    while process.poll() is None or _group_alive(process.pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True


def stop_group(process: subprocess.Popen[bytes], grace_s: float = GRACE_S) -> None:
    """Stop HypoFuzz and every worker it started: SIGINT (workers close their servers
    on the KeyboardInterrupt), then SIGTERM, then SIGKILL, each after a grace period."""
    for sig, wait_s in ((signal.SIGINT, grace_s), (signal.SIGTERM, 10.0), (signal.SIGKILL, 10.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        if _wait_group(process, wait_s):
            return
    process.wait()


@attrs.define
class FuzzResult:
    """How the run ended and what the workers counted."""

    returncode: int
    #: ``budget`` (stopped by us), ``exited`` (HypoFuzz stopped by itself) or ``interrupted``.
    stopped: str
    duration_s: float
    machines: dict[str, dict[str, Any]]
    reports: int

    def as_json(self) -> dict[str, Any]:
        return attrs.asdict(self)


def merge_reports(directory: Path) -> tuple[dict[str, dict[str, Any]], int]:
    """Sum the workers' reports per machine; also how many reports there were."""
    machines: dict[str, dict[str, Any]] = {}
    files = sorted(directory.glob("fuzz-*.json"))
    for path in files:
        with contextlib.suppress(OSError, ValueError):
            report = json.loads(path.read_text(encoding="utf-8"))
            for name, counts in report["machines"].items():
                into = machines.setdefault(
                    name,
                    {"target": counts["target"], "examples": 0, "steps": 0, "rules": {}}
                    | {"failing_examples": 0, "traces": [], "workers_closed": 0},
                )
                for field in ("examples", "steps", "failing_examples"):
                    into[field] += counts[field]
                for rule, runs in counts["rules"].items():
                    into["rules"][rule] = into["rules"].get(rule, 0) + runs
                into["traces"] = sorted(set(into["traces"]) | set(counts["traces"]))
                into["workers_closed"] += bool(report["closed"])
    return machines, len(files)


def run_fuzz(run: FuzzRun, *, out: Any = None) -> FuzzResult:
    """Run HypoFuzz over the machines for the budget, then stop it and sum the counts."""
    out = out or sys.stdout
    run.example_db.mkdir(parents=True, exist_ok=True)
    argv = command(run)
    where = f"dashboard http://localhost:{run.port}/" if run.dashboard else "no dashboard"
    print(
        f"modelcheck fuzz: {run.duration_s:.0f} s budget, {run.workers} worker(s), {where}, "
        f"examples in {run.example_db}\n  {' '.join(argv[3:])}",
        file=out,
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="modelcheck-fuzz-") as reports:
        env = {**os.environ, ENV_REPORTS: reports}
        started = time.monotonic()
        # Its own process group, so the stop reaches the workers and the dashboard.
        process = subprocess.Popen(argv, env=env, start_new_session=True)
        try:
            returncode = process.wait(run.duration_s)
            stopped = "exited"
            # HypoFuzz's workers may outlive it for a moment; never leave one behind.
            if not _wait_group(process, GRACE_S):
                stop_group(process)
        except subprocess.TimeoutExpired:
            print(
                "modelcheck fuzz: budget spent, stopping HypoFuzz (SIGINT: each worker "
                "prints a KeyboardInterrupt traceback, closes its server and exits)",
                file=out,
                flush=True,
            )
            stop_group(process)
            returncode, stopped = 0, "budget"
        except KeyboardInterrupt:
            stop_group(process)
            returncode, stopped = 130, "interrupted"
        machines, count = merge_reports(Path(reports))
    result = FuzzResult(
        returncode=returncode,
        stopped=stopped,
        duration_s=round(time.monotonic() - started, 3),
        machines=machines,
        reports=count,
    )
    if any(m["failing_examples"] for m in machines.values()) and result.returncode == 0:
        result.returncode = 1
    _print_summary(result, run, out)
    if run.report is not None:
        run.report.write_text(json.dumps(result.as_json(), indent=2) + "\n", encoding="utf-8")
    return result


def _print_summary(result: FuzzResult, run: FuzzRun, out: Any) -> None:
    print(
        f"modelcheck fuzz: stopped ({result.stopped}) after {result.duration_s:.1f} s; "
        f"{result.reports} worker report(s)",
        file=out,
    )
    for name, counts in sorted(result.machines.items()):
        print(
            f"  {name} on {counts['target']}: {counts['examples']} examples, "
            f"{counts['steps']} checked steps, {counts['failing_examples']} failing",
            file=out,
        )
        for trace in counts["traces"]:
            print(f"    trace: {trace} (replay: nox -s reproduce -- {trace})", file=out)
    if not result.machines:
        print("  no machine ran an example (see HypoFuzz's output above)", file=out)
    print(f"  traces in {run.traces}; examples in {run.example_db}", file=out, flush=True)


__all__ = ["FuzzRun", "FuzzSession", "fuzz_test", "merge_reports", "run_fuzz", "stop_group"]
