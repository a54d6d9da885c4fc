"""``nox -s bench``: the speed figures of the product, against a baseline from the same run.

Every figure is measured on one server in one process, next to the raw ``SELECT 1``
round-trip rate of that server (the baseline), so a figure from a busy 2-core CI box
and one from a laptop compare as ratios even when their absolute values do not.

Figures (each a median over repeats, with min/max and quartiles):

* ``select1`` - raw ``SELECT 1`` round trips per second (sync psycopg): the baseline;
  ``select1_async`` - the same through an event loop, as the machines run statements;
* ``reset_checkout`` - :meth:`DatabasePool.checkout` with the pool warm;
  ``example_start`` - everything an example waits for before its first rule (checkout,
  connection, first snapshot read and comparison): a machine's constructor;
* ``snapshot_read`` / ``snapshot_from_model`` / ``check_state`` - reading the database
  state of a store with a few branches, tables and rows, building the model's snapshot,
  and the whole per-step comparison;
* ``machine.<Name>`` - checked steps per second of each machine in ``machines/``
  (steps that ran on both sides and compared the full state: ``Coverage.steps``);
* ``bare_machine`` - a Hypothesis state machine without a database: the ceiling;
* ``bare_ops`` (per sequential machine) - the operation sequences that machine's run
  sent, replayed right after it with nothing else (``_bare_ops``): the physical limit
  of the workload; ``checked_step_vs_bare`` is the pair-by-pair multiple;
* ``memory`` - peak RSS and the traced-memory growth between the two halves of a long run.

Benchmarks are not tests: nothing here asserts a time.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import importlib.util
import json
import resource
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Final, TypeVar

import attrs
import hypothesis
import psycopg
from hypothesis import HealthCheck, Phase, given
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    rule,
    run_state_machine_as_test,
)

from modelcheck._bare_ops import Program, replay_bare
from modelcheck._postgres.isolation import DatabasePool
from modelcheck._postgres.server import Server
from modelcheck.interleaving import InterleavedMachine
from modelcheck.machine import (
    SESSION_SETTINGS,
    DifferentialMachine,
    MachineEnvironment,
    installer_for,
)
from modelcheck.target import Target, capabilities_of

REPORT_VERSION: Final = 1
T = TypeVar("T")
DEFAULT_REPORT: Final = "bench-report.json"
#: The machine modules of ``machines/``, in the order the table prints them.
MACHINE_FILES: Final = (
    "test_branches.py",
    "test_commits.py",
    "test_migrations.py",
    "test_merges.py",
    "test_combined.py",
)


@attrs.frozen
class BenchConfig:
    """How much work each measurement does; :data:`TINY` is for the test suite."""

    repeats: int = 5
    select1_queries: int = 2_000
    reset_examples: int = 20
    #: Pause between checkouts so the pool's background clones catch up ("warm").
    reset_gap_s: float = 0.05
    snapshot_reads: int = 200
    machine_examples: int = 20
    machine_steps: int = 25
    bare_examples: int = 100
    #: The long run: ``memory_examples`` examples over ``memory_runs`` consecutive runs.
    memory_examples: int = 1_000
    memory_runs: int = 4
    machines: tuple[str, ...] = MACHINE_FILES
    machines_dir: Path | None = None


TINY: Final = BenchConfig(
    repeats=2,
    select1_queries=20,
    reset_examples=2,
    reset_gap_s=0.02,
    snapshot_reads=3,
    machine_examples=2,
    machine_steps=3,
    bare_examples=3,
    memory_examples=4,
    memory_runs=2,
    machines=("test_branches.py",),
)


# ------------------------------------------------------------------------------ figures


def summarize(samples: Sequence[float], unit: str) -> dict[str, Any]:
    """Median, spread and the raw samples of one figure."""
    ordered = sorted(samples)
    if len(ordered) >= 2:
        q1, _, q3 = statistics.quantiles(ordered, n=4, method="inclusive")
    else:
        q1 = q3 = ordered[0]
    return {
        "unit": unit,
        "median": statistics.median(ordered),
        "min": ordered[0],
        "max": ordered[-1],
        "q1": q1,
        "q3": q3,
        "samples": list(samples),
    }


def _add_ratio(figure: dict[str, Any], baseline_rate: float) -> dict[str, Any]:
    """Rates as a fraction of the SELECT-1 rate; costs in SELECT-1 round trips."""
    median = figure.get("median")
    if median is None:
        return figure
    if figure["unit"].endswith("/s"):
        figure["ratio"] = median / baseline_rate
        figure["ratio_meaning"] = "x SELECT-1 rate"
    elif figure["unit"] == "s":
        figure["ratio"] = median * baseline_rate
        figure["ratio_meaning"] = "SELECT-1 round trips"
    return figure


# ------------------------------------------------------------------------------ baseline


def _select1_rates(dsn: str, config: BenchConfig) -> list[float]:
    rates = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        for _ in range(10):  # past psycopg's prepare threshold
            conn.execute("SELECT 1").fetchone()
        for _ in range(config.repeats):
            t0 = time.perf_counter()
            for _ in range(config.select1_queries):
                conn.execute("SELECT 1").fetchone()
            rates.append(config.select1_queries / (time.perf_counter() - t0))
    return rates


def _select1_async_rates(dsn: str, config: BenchConfig) -> list[float]:
    loop = asyncio.new_event_loop()
    rates = []
    try:
        conn = loop.run_until_complete(psycopg.AsyncConnection.connect(dsn, autocommit=True))

        async def one() -> None:
            cursor = await conn.execute("SELECT 1")
            await cursor.fetchone()

        try:
            for _ in range(10):
                loop.run_until_complete(one())
            for _ in range(config.repeats):
                t0 = time.perf_counter()
                for _ in range(config.select1_queries):
                    loop.run_until_complete(one())
                rates.append(config.select1_queries / (time.perf_counter() - t0))
        finally:
            loop.run_until_complete(conn.close())
    finally:
        loop.close()
    return rates


# ------------------------------------------------------------------------------ machines


def load_machine(path: Path) -> type[DifferentialMachine]:
    """The one DifferentialMachine subclass a ``machines/test_*.py`` file defines."""
    spec = importlib.util.spec_from_file_location(f"_modelcheck_bench_{path.stem}", path)
    if spec is None or spec.loader is None:  # pragma: no cover - a missing file fails earlier
        raise FileNotFoundError(path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    found = [
        value
        for value in vars(module).values()
        if isinstance(value, type)
        and issubclass(value, DifferentialMachine)
        and value.__module__ == module.__name__
    ]
    if len(found) != 1:
        raise LookupError(f"{path}: expected one machine class, found {len(found)}")
    return found[0]


def machines_dir(config: BenchConfig) -> Path:
    if config.machines_dir is not None:
        return config.machines_dir
    here = Path(__file__).resolve().parent.parent / "machines"
    return here if here.is_dir() else Path.cwd() / "machines"


def _settings(examples: int, steps: int) -> hypothesis.settings:
    return hypothesis.settings(
        max_examples=examples,
        stateful_step_count=steps,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )


def _machine_rate(
    machine: type[DifferentialMachine],
    environment: MachineEnvironment,
    config: BenchConfig,
    programs: list[Program] | None = None,
    seed: int | None = None,
) -> tuple[float, int, int]:
    """Checked steps per second of one run, with its step and example counts; each
    example's operation sequence goes to ``programs`` when given."""
    environment.coverage.clear()
    made: list[DifferentialMachine] = []

    def factory() -> DifferentialMachine:
        made.append(machine(environment))
        return made[-1]

    if seed is not None:
        factory = hypothesis.seed(seed)(factory)
    t0 = time.perf_counter()
    run_state_machine_as_test(
        factory,  # type: ignore[arg-type]
        settings=_settings(config.machine_examples, config.machine_steps),
    )
    took = time.perf_counter() - t0
    if programs is not None:
        programs += [[(s.operation, s.args) for s in m.steps] for m in made]
    coverage = environment.coverage[machine.__name__]
    return coverage.steps / took, coverage.steps, coverage.examples


def _cold_rate(
    cls: type[DifferentialMachine],
    environment: MachineEnvironment,
    config: BenchConfig,
    seed: int,
) -> float:
    """The checked rate of the same seed on the cold path (no warm backend, an
    event-loop client): what every example cost before warm examples."""
    environment.warm_examples = environment.blocking_client = False
    try:
        return _machine_rate(cls, environment, config, seed=seed)[0]
    finally:
        environment.warm_examples = environment.blocking_client = True


def _bare_figures(programs: list[Program], environment: MachineEnvironment) -> tuple[float, float]:
    """The same operation sequences, bare: (steps/s with each example's database and
    connection, steps/s of the operations alone)."""
    options = " ".join(f"-c {k}={v}" for k, v in SESSION_SETTINGS.items())
    run = replay_bare(programs, environment.pool, environment.target, options)
    return run.rate, run.operations_rate


def _machine_figure(
    cls: type[DifferentialMachine],
    environment: MachineEnvironment,
    config: BenchConfig,
    progress: Callable[[str], None],
) -> dict[str, Any]:
    """Steps/s of ``config.repeats`` runs; a run that finds a bug is reported, not counted."""
    rates: list[float] = []
    steps: list[int] = []
    examples: list[int] = []
    failures: list[str] = []
    # Sequential machines only: an interleaved one's steps wait on each other's locks,
    # so a bare replay on one connection would not be the same workload.
    bare = not issubclass(cls, InterleavedMachine)
    bare_rates: list[float] = []
    operation_rates: list[float] = []
    multiples: list[float] = []
    cold_rates: list[float] = []
    cold_multiples: list[float] = []
    speedups: list[float] = []
    # The cold path (a fresh database and an event-loop client per example, as before
    # warm examples) only where the warm one applies: a transaction_safe target.
    cold = bare and capabilities_of(environment.target).transaction_safe
    for repeat in range(config.repeats):
        programs: list[Program] | None = [] if bare else None
        try:
            rate, n_steps, n_examples = _machine_rate(
                cls, environment, config, programs, seed=repeat
            )
            cold_rate = _cold_rate(cls, environment, config, repeat) if cold else None
        except Exception as exc:  # a bug found is reported, not a crashed bench
            failures.append(f"{type(exc).__name__}: {str(exc).splitlines()[0]}")
            progress(f"  run failed, not counted: {failures[-1]}")
            continue
        rates.append(rate)
        steps.append(n_steps)
        examples.append(n_examples)
        if programs:
            # Right after the checked run, under the same load: the pair's ratio.
            bare_rate, operations_rate = _bare_figures(programs, environment)
            bare_rates.append(bare_rate)
            operation_rates.append(operations_rate)
            multiples.append(bare_rate / rate if rate else float("nan"))
            if cold_rate:
                cold_rates.append(cold_rate)
                cold_multiples.append(bare_rate / cold_rate)
                speedups.append(rate / cold_rate)
    figure: dict[str, Any] = summarize(rates, "steps/s") if rates else {"unit": "steps/s"}
    if bare_rates:
        figure["bare_ops"] = summarize(bare_rates, "steps/s")
        figure["bare_operations_only"] = summarize(operation_rates, "steps/s")
        # How many bare steps' time one checked step costs (1.0 would be free checking).
        figure["checked_step_vs_bare"] = summarize(multiples, "x")
    if cold_rates:
        # The same seeds on the cold path, each run right after its warm twin.
        figure["cold"] = summarize(cold_rates, "steps/s")
        figure["cold_step_vs_bare"] = summarize(cold_multiples, "x")
        figure["warm_vs_cold"] = summarize(speedups, "x")
    figure["steps_per_run"] = steps
    figure["examples_per_run"] = examples
    figure["failed_runs"] = failures
    return figure


class BareMachine(RuleBasedStateMachine):
    """A Hypothesis machine with no database: the ceiling for any differential machine."""

    items = Bundle("items")
    steps = 0

    def __init__(self) -> None:
        super().__init__()
        self.model: dict[str, int] = {}

    @rule(target=items, name=st.text(max_size=8))
    def add(self, name: str) -> str:
        BareMachine.steps += 1
        self.model[name] = len(self.model)
        return name

    @rule(name=items)
    def remove(self, name: str) -> None:
        BareMachine.steps += 1
        self.model.pop(name, None)

    @rule()
    def count(self) -> None:
        BareMachine.steps += 1
        assert len(self.model) >= 0


def _bare_rate(config: BenchConfig) -> float:
    BareMachine.steps = 0
    t0 = time.perf_counter()
    run_state_machine_as_test(
        BareMachine, settings=_settings(config.bare_examples, config.machine_steps)
    )
    return BareMachine.steps / (time.perf_counter() - t0)


# ------------------------------------------------------------------------------ reset


def _reset_costs(
    pool: DatabasePool,
    machine: type[DifferentialMachine],
    environment: MachineEnvironment,
    config: BenchConfig,
) -> tuple[list[float], list[float]]:
    checkout: list[float] = []
    start: list[float] = []
    for _ in range(config.reset_examples):
        time.sleep(config.reset_gap_s)
        t0 = time.perf_counter()
        db = pool.checkout()
        checkout.append(time.perf_counter() - t0)
        pool.release(db)
    for _ in range(config.reset_examples):
        time.sleep(config.reset_gap_s)
        t0 = time.perf_counter()
        instance = machine(environment)
        start.append(time.perf_counter() - t0)
        instance.teardown()
    return checkout, start


def _cold_start(
    machine: type[DifferentialMachine], environment: MachineEnvironment, config: BenchConfig
) -> list[float]:
    """Example start on the cold path (fresh database, new backend, event-loop client)."""
    environment.warm_examples = environment.blocking_client = False
    try:
        return _reset_costs(environment.pool, machine, environment, config)[1]
    finally:
        environment.warm_examples = environment.blocking_client = True


# ------------------------------------------------------------------------------ snapshot

_COLUMNS: Final = [
    {"name": "id", "type": "integer", "nullable": False, "default": None},
    {"name": "name", "type": "text", "nullable": True, "default": None},
    {"name": "score", "type": "numeric(6,2)", "nullable": True, "default": "0"},
]


def _populate(instance: DifferentialMachine) -> None:
    """A store with three branches, two tables each, a few rows, commits, an index."""
    run = instance.run
    for table in ("users", "orders"):
        rows = [[str(i), f"n{i}", f"{i}.5"] for i in range(5)]
        ops = [
            {"op": "create_table", "table": table, "columns": _COLUMNS},
            {"op": "insert_rows", "table": table, "rows": rows},
        ]
        run("apply_migration", "main", f"0001_{table[:5]}", ops)
    run(
        "apply_migration",
        "main",
        "0002_index",
        [
            {
                "op": "create_index",
                "index": "ix",
                "table": "users",
                "columns": ["id"],
                "unique": True,
            }
        ],
    )
    run("commit", "main", "first")
    run("create_branch", "feature", "main")
    run("create_branch", "topic", "feature")
    run("commit", "feature", "second")


def _snapshot_costs(
    machine: type[DifferentialMachine], environment: MachineEnvironment, config: BenchConfig
) -> dict[str, list[float]]:
    holder: list[DifferentialMachine] = []

    @given(st.just(None))
    @hypothesis.settings(max_examples=1, database=None, deadline=None, phases=[Phase.generate])
    def populate(_: None) -> None:  # inside a test so that note() works
        instance = machine(environment)
        holder.append(instance)
        _populate(instance)

    populate()
    instance = holder[0]
    try:
        costs: dict[str, list[float]] = {"read": [], "from_model": [], "check_state": []}
        n = config.snapshot_reads
        for _ in range(config.repeats):
            t0 = time.perf_counter()
            for _ in range(n):
                instance.read_state()
            t1 = time.perf_counter()
            for _ in range(n):
                instance.spec.expected(instance.model, full=True)
            t2 = time.perf_counter()
            for _ in range(n):
                instance.check_state()
            t3 = time.perf_counter()
            costs["read"].append((t1 - t0) / n)
            costs["from_model"].append((t2 - t1) / n)
            costs["check_state"].append((t3 - t2) / n)
        snap = instance.read_state()
        costs["_shape"] = [
            float(len(snap.branches)),
            float(sum(len(t.tables) for t in snap.trees.values())),
            float(sum(len(t.rows) for tree in snap.trees.values() for t in tree.tables.values())),
        ]
        return costs
    finally:
        instance.teardown()


# ------------------------------------------------------------------------------ memory


def _memory(
    machine: type[DifferentialMachine], environment: MachineEnvironment, config: BenchConfig
) -> dict[str, Any]:
    """Traced Python memory through a long run made of consecutive Hypothesis runs.

    Two growths are reported. Within one run, Hypothesis' engine keeps a record of every
    example it generated (bounded by its own caches, freed when the run ends): that is
    ``within_run_growth_bytes``. What a long session keeps is what survives each run:
    ``traced_growth_bytes`` compares the memory left after the runs of the first half
    with that after the runs of the second half, and is the figure that must stay flat.
    """
    runs = max(2, config.memory_runs)
    per_run = max(1, config.memory_examples // runs)
    samples: list[tuple[int, int]] = []
    rss: list[tuple[int, int]] = []
    every = max(1, per_run // 10)

    class Sampled(machine):  # type: ignore[valid-type,misc]
        def teardown(self) -> None:
            super().teardown()
            if self.coverage.examples % every == 0:
                gc.collect()
                samples.append((self.coverage.examples, tracemalloc.get_traced_memory()[0]))
                rss.append((self.coverage.examples, _rss_bytes()))

    Sampled.__name__ = machine.__name__
    environment.coverage.clear()
    after_run: list[int] = []
    within: list[int] = []
    tracemalloc.start()
    try:
        for _ in range(runs):
            gc.collect()
            before = tracemalloc.get_traced_memory()[0]
            first_sample = len(samples)
            run_state_machine_as_test(
                lambda: Sampled(environment),  # type: ignore[arg-type]
                settings=_settings(per_run, config.machine_steps),
            )
            in_run = [b for _, b in samples[first_sample:]]
            within.append((max(in_run) if in_run else before) - before)
            gc.collect()
            after_run.append(tracemalloc.get_traced_memory()[0])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    half = runs // 2
    first, second = statistics.median(after_run[:half]), statistics.median(after_run[half:])
    coverage = environment.coverage[machine.__name__]
    return {
        "machine": machine.__name__,
        "runs": runs,
        "examples": coverage.examples,
        "steps": coverage.steps,
        "traced_samples": [{"example": e, "bytes": b} for e, b in samples],
        "traced_after_run_bytes": after_run,
        "traced_first_half_median_bytes": first,
        "traced_second_half_median_bytes": second,
        "traced_growth_bytes": second - first,
        "within_run_growth_bytes": statistics.median(within),
        "traced_peak_bytes": peak,
        # ru_maxrss is in KiB on Linux
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        # Resident memory through the run: what the process really holds (Python's
        # heap, psycopg's libpq buffers, the warm backend's client side).
        "rss_samples": [{"example": e, "bytes": b} for e, b in rss],
        "rss_growth_bytes": _rss_growth(rss),
    }


def _rss_bytes() -> int:
    """Resident set size now (Linux ``/proc/self/statm``; 0 elsewhere)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0
    return pages * resource.getpagesize()


def _rss_growth(rss: Sequence[tuple[int, int]]) -> int:
    """RSS at the last sample minus RSS after the first tenth of the run (warm-up)."""
    if len(rss) < 2:
        return 0
    warmed = rss[max(0, len(rss) // 10 - 1)][1]
    return rss[-1][1] - warmed


# ------------------------------------------------------------------------------ driver


def _progress(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


class _Probe:
    """Short SELECT-1 bursts taken right before and after each figure.

    On a shared box the load changes within a run; a figure is set against the
    round-trip rate measured around it (its local baseline), not only at the start.
    """

    def __init__(self, dsn: str, queries: int) -> None:
        self._conn = psycopg.connect(dsn, autocommit=True)
        self._queries = max(1, queries)
        self.local: dict[str, float] = {}

    def rate(self) -> float:
        t0 = time.perf_counter()
        for _ in range(self._queries):
            self._conn.execute("SELECT 1", prepare=True).fetchone()
        return self._queries / (time.perf_counter() - t0)

    def around(self, names: Sequence[str], measure: Callable[[], T]) -> T:
        before = self.rate()
        result = measure()
        local = (before + self.rate()) / 2
        for name in names:
            self.local[name] = local
        return result

    def close(self) -> None:
        self._conn.close()


def run_bench(
    server: Server,
    target: Target,
    config: BenchConfig = BenchConfig(),  # frozen: a shared default is safe
    progress: Callable[[str], None] = _progress,
) -> dict[str, Any]:
    """Measure every figure on ``server`` with ``target``; the report as a JSON-able dict."""
    figures: dict[str, dict[str, Any]] = {}
    progress("SELECT 1 baseline")
    figures["select1"] = summarize(_select1_rates(server.dsn, config), "queries/s")
    probe = _Probe(server.dsn, config.select1_queries // 4)
    try:
        figures["select1_async"] = probe.around(
            ["select1_async"],
            lambda: summarize(_select1_async_rates(server.dsn, config), "queries/s"),
        )
        machines, memory, shape = _database_figures(
            server, target, config, progress, figures, probe
        )
        progress("bare machine")
        figures["bare_machine"] = probe.around(
            ["bare_machine"],
            lambda: summarize([_bare_rate(config) for _ in range(config.repeats)], "steps/s"),
        )
    finally:
        probe.close()
    baseline = figures["select1"]["median"]
    for name, figure in [*figures.items(), *(("machine." + k, v) for k, v in machines.items())]:
        local = probe.local.get(name, baseline)
        _add_ratio(figure, local)
        figure["baseline_rate"] = local
        if "median" in figure:
            figure["ratio_to_run_baseline"] = _add_ratio(dict(figure), baseline)["ratio"]
    return {
        "version": REPORT_VERSION,
        "environment": {
            "python": sys.version.split()[0],
            "hypothesis": hypothesis.__version__,
            "psycopg": psycopg.__version__,
            "server": server.describe(),
            "target": target.name,
            "cpus": _cpu_count(),
            "loadavg": _loadavg(),
        },
        "config": {
            k: (str(v) if isinstance(v, Path) else v) for k, v in attrs.asdict(config).items()
        },
        "baseline": {
            "figure": "select1",
            "rate": baseline,
            "note": "each figure's ratio uses baseline_rate: SELECT-1 bursts right around it",
        },
        "figures": figures,
        "machines": machines,
        "snapshot_store": dict(
            zip(("branches", "tables", "rows"), (int(x) for x in shape), strict=True)
        ),
        "memory": memory,
    }


def _database_figures(
    server: Server,
    target: Target,
    config: BenchConfig,
    progress: Callable[[str], None],
    figures: dict[str, dict[str, Any]],
    probe: _Probe,
) -> tuple[dict[str, dict[str, Any]], dict[str, Any], list[float]]:
    """Reset, snapshot, machines and memory: everything that needs the pool."""
    classes = [load_machine(machines_dir(config) / name) for name in config.machines]
    machines: dict[str, dict[str, Any]] = {}
    with DatabasePool(server, installer_for(target), settings=SESSION_SETTINGS) as pool:
        environment = MachineEnvironment(target, pool, "bench")
        reference = classes[-1]
        progress("reset (warm checkout, example start)")
        checkout, start = probe.around(
            ["reset_checkout", "example_start"],
            lambda: _reset_costs(pool, reference, environment, config),
        )
        figures["reset_checkout"] = summarize(checkout, "s")
        figures["example_start"] = summarize(start, "s")
        if capabilities_of(target).transaction_safe:
            progress("example start, cold path")
            figures["example_start_cold"] = summarize(
                probe.around(
                    ["example_start_cold"],
                    lambda: _cold_start(reference, environment, config),
                ),
                "s",
            )
        progress("snapshot read")
        costs = probe.around(
            ["snapshot_read", "snapshot_from_model", "check_state"],
            lambda: _snapshot_costs(reference, environment, config),
        )
        shape = costs.pop("_shape")
        figures["snapshot_read"] = summarize(costs["read"], "s")
        figures["snapshot_from_model"] = summarize(costs["from_model"], "s")
        figures["check_state"] = summarize(costs["check_state"], "s")
        for cls in classes:
            progress(f"machine {cls.__name__}")
            machines[cls.__name__] = probe.around(
                [f"machine.{cls.__name__}"],
                functools.partial(_machine_figure, cls, environment, config, progress),
            )
        # The long run uses a machine that found no bug here (a failure ends a run).
        healthy = [c for c in classes if not machines[c.__name__]["failed_runs"]]
        reference = (healthy or classes)[-1]
        progress(f"memory ({config.memory_examples} examples of {reference.__name__})")
        try:
            memory = _memory(reference, environment, config)
        except Exception as exc:
            memory = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0]}"}
            progress(f"  memory run failed: {memory['error']}")
    return machines, memory, shape


def _loadavg() -> list[float]:
    import os

    try:
        return list(os.getloadavg())
    except OSError:  # pragma: no cover - not on Linux
        return []


def _cpu_count() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _fmt(figure: dict[str, Any]) -> tuple[str, str, str]:
    unit = figure["unit"]
    if unit == "s":
        value = f"{figure['median'] * 1000:9.3f} ms"
        spread = f"{figure['min'] * 1000:.3f}-{figure['max'] * 1000:.3f}"
        ratio = f"{figure['ratio']:8.1f} x SELECT-1"
    else:
        value = f"{figure['median']:9.0f} {unit}"
        spread = f"{figure['min']:.0f}-{figure['max']:.0f}"
        ratio = f"{figure['ratio']:8.3f} x SELECT-1 rate"
    return value, spread, ratio


def render_table(report: dict[str, Any]) -> str:
    """The short human summary printed after a run."""
    rows = [
        *report["figures"].items(),
        *(("machine " + k, v) for k, v in report["machines"].items()),
    ]
    lines = [f"{'figure':<28} {'median':>17}  {'min-max':<22} ratio"]
    for name, figure in rows:
        if "median" not in figure:
            lines.append(f"{name:<28} no successful run: {figure.get('failed_runs')}")
            continue
        value, spread, ratio = _fmt(figure)
        if figure.get("failed_runs"):
            ratio += f"  ({len(figure['failed_runs'])} failed runs not counted)"
        lines.append(f"{name:<28} {value:>17}  {spread:<22} {ratio}")
        multiple = figure.get("checked_step_vs_bare")
        if multiple and "median" in multiple:
            bare = figure["bare_ops"]
            lines.append(
                f"{'  checked step / bare op':<28} {multiple['median']:>15.2f} x  "
                f"{multiple['min']:.2f}-{multiple['max']:.2f} x; bare {bare['median']:.0f} steps/s"
            )
        speedup = figure.get("warm_vs_cold")
        if speedup and "median" in speedup:
            cold, slower = figure["cold"], figure["cold_step_vs_bare"]
            lines.append(
                f"{'  warm / cold (same seeds)':<28} {speedup['median']:>15.2f} x  "
                f"{speedup['min']:.2f}-{speedup['max']:.2f} x; cold {cold['median']:.0f} "
                f"steps/s, {slower['median']:.2f} x bare"
            )
    memory = report["memory"]
    if "error" in memory:
        lines.append(f"memory: run failed: {memory['error']}")
    elif memory:
        lines.append(
            f"memory: {memory['examples']} examples / {memory['steps']} steps of "
            f"{memory['machine']}: peak RSS {memory['peak_rss_bytes'] / 2**20:.0f} MiB, "
            f"kept after each of {memory['runs']} runs: first half to second half "
            f"{memory['traced_growth_bytes'] / 1024:+.0f} KiB; within one run (Hypothesis' "
            f"example records, freed at its end) {memory['within_run_growth_bytes'] / 1024:+.0f} "
            f"KiB; traced peak {memory['traced_peak_bytes'] / 2**20:.1f} MiB; RSS after "
            f"warm-up to the end {memory['rss_growth_bytes'] / 2**20:+.1f} MiB"
        )
    return "\n".join(lines)


def write_report(report: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")


def iter_figures(report: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every figure of a report, machines included, by name."""
    yield from report["figures"].items()
    for name, figure in report["machines"].items():
        yield f"machine.{name}", figure


__all__ = [
    "DEFAULT_REPORT",
    "TINY",
    "BenchConfig",
    "iter_figures",
    "load_machine",
    "render_table",
    "run_bench",
    "summarize",
    "write_report",
]
