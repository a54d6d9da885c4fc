"""Run N workers in real parallel against a target and record every call.

Each worker owns one autocommit :class:`psycopg.AsyncConnection` (each operation is
its own transaction), drives a seeded random sequence of domain operations, and
reconnects every few dozen calls so that, with more workers than connection slots,
everybody gets a turn: a refused connect (53300) is retried with backoff, never lost.
Workers are grouped (``group_size`` per group); a group shares a root branch
``g<k>`` and the names it creates, so calls contend inside a group while groups stay
independent partitions for the checker.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from typing import Any, Final

import attrs
import psycopg

from modelcheck.machine import SESSION_SETTINGS
from modelcheck.suites.vstore.domain.errors import DomainError
from modelcheck.suites.vstore.results import VersionedStoreTarget as Target
from modelcheck.suites.vstore.results import domain_error_from
from modelcheck.suites.vstore.snapshot import Snapshot
from modelcheck.suites.vstore.spec import VSTORE
from modelcheck.suites.vstore.stress.checker import call_args
from modelcheck.suites.vstore.stress.history import Call, encode_result, trinity_of
from modelcheck.target import observe

#: Relative weights of the operations a worker picks.
WEIGHTS: Final[dict[str, int]] = {
    "commit": 30,
    "apply_migration": 25,
    "rollback_migration": 8,
    "merge": 12,
    "create_branch": 7,
    "delete_branch": 3,
    "log": 9,
    "resolve": 6,
}
#: A group keeps at most this many branches it believes active (then it deletes one).
MAX_BRANCHES: Final = 6
_TABLES: Final = 3


@attrs.frozen
class StressConfig:
    workers: int = 32
    duration: float = 60.0
    seed: int = 0
    group_size: int = 4
    #: Every worker closes its connection after this many calls (a random count in range).
    reconnect_every: tuple[int, int] = (20, 60)
    statement_timeout: str = "30s"


@attrs.define
class RunResult:
    config: StressConfig
    target: str
    setup: list[Call]
    history: list[Call]
    final: Snapshot
    wall: float
    connects: int = 0
    connect_refusals: dict[str, int] = attrs.field(factory=dict)


@attrs.define
class _Group:
    """What the workers of one group believe (a guide for arguments, never an oracle)."""

    k: int
    branches: list[str]
    next_branch: int = 0
    next_migration: int = 0
    applied: dict[str, list[str]] = attrs.field(factory=dict)
    migrations: list[str] = attrs.field(factory=list)
    entities: list[tuple[str, str, int, str]] = attrs.field(factory=list)

    @property
    def root(self) -> str:
        return f"g{self.k}"

    def migration_name(self, n: int) -> str:
        return f"{n % 10000:04d}_g{self.k}_{n // 10000}"

    def next_call(self, rng: random.Random, worker: int, n: int) -> tuple[str, tuple[Any, ...]]:
        op = rng.choices(list(WEIGHTS), weights=list(WEIGHTS.values()))[0]
        branch = rng.choice(self.branches)
        if op == "create_branch" and len(self.branches) >= MAX_BRANCHES:
            op = "delete_branch"
        if op == "delete_branch" and len(self.branches) < 3:
            op = "commit"
        if op == "commit":
            return op, (branch, f"w{worker} n{n}")
        if op == "apply_migration":
            if rng.random() < 0.9 or not self.migrations:
                name = self.migration_name(self.next_migration)
                self.next_migration += 1
            else:
                name = rng.choice(self.migrations[-5:])
            ops = [_migration_op(rng, n) for _ in range(rng.randint(1, 2))]
            return op, (branch, name, ops)
        if op == "rollback_migration":
            applied = self.applied.get(branch) or self.migrations[-3:]
            if not applied:
                return "log", (branch,)
            pick = applied[-1] if rng.random() < 0.8 else rng.choice(applied)
            return op, (pick,)
        if op == "merge":
            other = rng.choice(self.branches)
            return op, (other, branch)
        if op == "create_branch":
            if rng.random() < 0.85 or self.next_branch == 0:
                self.next_branch += 1
            return op, (f"{self.root}_b{self.next_branch}", branch)
        if op == "delete_branch":
            return op, (rng.choice([b for b in self.branches if b != self.root]),)
        if op == "resolve":
            if not self.entities or rng.random() < 0.1:
                return op, ("branch", "identifier", f"{self.root}_b{self.next_branch + 1}")
            kind, ident, pk, id = rng.choice(self.entities[-20:])
            key_kind = rng.choice(["identifier", "pk", "id"])
            key: Any = {"identifier": ident, "pk": pk, "id": id}[key_kind]
            return op, (kind, key_kind, key)
        return "log", (branch,)

    def learn(self, call: Call) -> None:
        if call.status != "ok":
            return
        op, args = call.operation, call.args
        trinity = trinity_of(call)
        if trinity is not None and op != "resolve":
            kind, ident, pk, id = trinity
            self.entities.append((kind, ident, pk, str(id)))
        if op == "create_branch" and args[0] not in self.branches:
            self.branches.append(args[0])
        elif op == "delete_branch" and args[0] in self.branches:
            self.branches.remove(args[0])
        elif op == "apply_migration":
            self.applied.setdefault(args[0], []).append(args[1])
            self.migrations.append(args[1])
        elif op == "rollback_migration":
            for names in self.applied.values():
                if args[0] in names:
                    names.remove(args[0])


def _column(name: str, rng: random.Random) -> dict[str, Any]:
    default = rng.choice([None, None, "1"])
    return {"name": name, "type": "integer", "nullable": True, "default": default}


def _migration_op(rng: random.Random, n: int) -> dict[str, Any]:
    """A small, mostly valid migration operation on a few shared table names."""
    t = f"t{rng.randrange(_TABLES)}"
    choice = rng.choices(
        ["create_table", "add_column", "drop_column", "insert_rows", "index", "drop_table"],
        weights=[5, 4, 2, 4, 2, 1],
    )[0]
    if choice == "create_table":
        columns = [
            {"name": "id", "type": "integer", "nullable": True, "default": None},
            {"name": "v", "type": "text", "nullable": True, "default": None},
        ]
        return {"op": "create_table", "table": t, "columns": columns}
    if choice == "add_column":
        return {"op": "add_column", "table": t, "column": _column(f"c{rng.randrange(3)}", rng)}
    if choice == "drop_column":
        return {"op": "drop_column", "table": t, "column": f"c{rng.randrange(3)}"}
    if choice == "insert_rows":
        return {"op": "insert_rows", "table": t, "rows": [[str(n), f"r{n}"]]}
    if choice == "index":
        if rng.random() < 0.7:
            index = f"i{t}"
            return {
                "op": "create_index",
                "index": index,
                "table": t,
                "columns": ["id"],
                "unique": False,
            }
        return {"op": "drop_index", "index": f"i{t}"}
    return {"op": "drop_table", "table": t}


class _Recorder:
    def __init__(self, t0: float) -> None:
        self.t0 = t0
        self.calls: list[Call] = []
        self.next_index = 0

    def now(self) -> float:
        return time.monotonic() - self.t0

    def index(self) -> int:
        self.next_index += 1
        return self.next_index - 1


class _Connector:
    """Connects with backoff while the server refuses for lack of slots (53300)."""

    def __init__(self, dsn: str, options: str) -> None:
        self.dsn = dsn
        self.options = options
        self.connects = 0
        self.refusals: dict[str, int] = {}

    async def connect(self, rng: random.Random) -> psycopg.AsyncConnection[Any]:
        delay = 0.005
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(
                    self.dsn, autocommit=True, options=self.options
                )
            except psycopg.OperationalError as exc:
                state = _connect_sqlstate(exc)
                if state is None:
                    raise
                self.refusals[state] = self.refusals.get(state, 0) + 1
                await asyncio.sleep(delay * (0.5 + rng.random()))
                delay = min(delay * 2, 0.5)
                continue
            self.connects += 1
            return conn


def _connect_sqlstate(exc: psycopg.OperationalError) -> str | None:
    """The SQLSTATE of a refused connection attempt we should retry, else None.

    libpq reports a failed connection without a result, so psycopg has no
    ``sqlstate`` for it; the server's FATAL text is then the only signal.
    """
    if exc.sqlstate in ("53300", "57P03"):
        return exc.sqlstate
    text = str(exc)
    if "too many clients" in text or "remaining connection slots" in text:
        return "53300"
    if "the database system is starting up" in text:
        return "57P03"
    return None


async def _run_call(
    target: Target,
    conn: psycopg.AsyncConnection[Any],
    rec: _Recorder,
    worker: int,
    op: str,
    args: tuple[Any, ...],
) -> Call:
    index = rec.index()
    probe = Call(index, worker, op, args, 0.0, 0.0, "ok")
    invoke = rec.now()
    try:
        value = await getattr(target, op)(conn, *call_args(probe))
    except DomainError as exc:
        complete = rec.now()
        status = "indeterminate" if conn.broken or conn.closed else "error"
        return Call(index, worker, op, args, invoke, complete, status, None, exc.sqlstate, exc.kind)
    except psycopg.Error as exc:
        # A target that lets Postgres errors through: classify them the standard way.
        complete = rec.now()
        if conn.broken or conn.closed:
            return Call(
                index, worker, op, args, invoke, complete, "indeterminate", None, exc.sqlstate
            )
        error = domain_error_from(exc)
        return Call(
            index, worker, op, args, invoke, complete, "error", None, error.sqlstate, error.kind
        )
    complete = rec.now()
    return Call(index, worker, op, args, invoke, complete, "ok", encode_result(op, value))


async def run_async(  # noqa: PLR0915 (setup, workers and teardown read best together)
    target: Target,
    dsn: str,
    config: StressConfig,
    progress: Callable[[str], None] | None = None,
) -> RunResult:
    settings = {**SESSION_SETTINGS, "statement_timeout": config.statement_timeout}
    options = " ".join(f"-c {k}={v}" for k, v in settings.items())
    connector = _Connector(dsn, options)
    rec = _Recorder(time.monotonic())
    n_groups = max(1, -(-config.workers // config.group_size))
    groups = [_Group(k, [f"g{k}"]) for k in range(n_groups)]
    setup: list[Call] = []
    setup_rng = random.Random(f"{config.seed}:setup")  # noqa: S311 (reproducible, not secret)
    async with await connector.connect(setup_rng) as conn:
        for group in groups:
            call = await _run_call(target, conn, rec, -1, "create_branch", (group.root, "main"))
            setup.append(call)
            group.learn(call)
    history: list[Call] = []
    start = time.monotonic()
    deadline = start + config.duration

    async def worker(w: int) -> None:
        rng = random.Random(f"{config.seed}:{w}")  # noqa: S311 (reproducible, not secret)
        group = groups[w // config.group_size]
        conn: psycopg.AsyncConnection[Any] | None = None
        left = 0
        n = 0
        try:
            while time.monotonic() < deadline:
                if conn is None:
                    conn = await connector.connect(rng)
                    left = rng.randint(*config.reconnect_every)
                op, args = group.next_call(rng, w, n)
                n += 1
                call = await _run_call(target, conn, rec, w, op, args)
                history.append(call)
                group.learn(call)
                left -= 1
                if left <= 0 or call.status == "indeterminate":
                    await conn.close()
                    conn = None
        finally:
            if conn is not None:
                await conn.close()

    async def report_progress() -> None:
        while progress is not None:
            await asyncio.sleep(5)
            progress(f"  {time.monotonic() - start:5.1f} s: {len(history)} calls")

    ticker = asyncio.create_task(report_progress())
    try:
        await asyncio.gather(*(worker(w) for w in range(config.workers)))
    finally:
        ticker.cancel()
    wall = time.monotonic() - start
    async with await connector.connect(setup_rng) as conn:
        final = await observe(VSTORE, target, conn, full=True)
    history.sort(key=lambda c: c.index)
    return RunResult(
        config,
        target.name,
        setup,
        history,
        final,
        wall,
        connector.connects,
        dict(connector.refusals),
    )


def run(
    target: Target,
    dsn: str,
    config: StressConfig,
    progress: Callable[[str], None] | None = None,
) -> RunResult:
    """Run the workers for ``config.duration`` seconds; returns the history and final state."""
    return asyncio.run(run_async(target, dsn, config, progress))


__all__ = ["RunResult", "StressConfig", "run", "run_async"]
