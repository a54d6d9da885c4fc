"""Check a stress history against the model: a serial order per partition, then the state.

The history is split into partitions by what calls touch (branch names, migration
identifiers, commit identifiers); calls in different partitions commute. For each
partition a depth-first search looks for a serial order that respects real time (a
call that completed before another was invoked comes first) and reproduces every
observed result on a :class:`~modelcheck.suites.vstore.domain.model.Model`; it memoises on
(set of applied calls, model state) and gives up after ``bound`` expanded states,
which makes the partition (and the verdict) ``unknown``, never ``pass``. Calls that
aborted (class 40, 55P03, 57014, 53300, 57P01) are left out of every order: they must
have had no effect, which the final-state comparison and later results check.
"""

from __future__ import annotations

import copy
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final, Literal
from uuid import UUID

import attrs

from modelcheck import diff
from modelcheck.spec import ENTITY_KEY, LOOKUP
from modelcheck.suites.vstore.domain import hashing, versions
from modelcheck.suites.vstore.domain.errors import DomainError
from modelcheck.suites.vstore.domain.model import Branch, Kind, Model, Predicted
from modelcheck.suites.vstore.domain.tree import Tree
from modelcheck.suites.vstore.results import TrinityId
from modelcheck.suites.vstore.snapshot import Snapshot, from_model
from modelcheck.suites.vstore.spec import trinity_opaque
from modelcheck.suites.vstore.stress.history import Call, trinity_of

Verdict = Literal["pass", "anomaly", "unknown"]
#: Expanded search states per partition before the partition is ``unknown``.
DEFAULT_BOUND: Final = 200_000
_READS: Final = frozenset({"log", "resolve", "verify"})


@attrs.frozen
class Anomaly:
    """Something no serial execution explains, with the calls involved (history indices)."""

    kind: str
    message: str
    calls: tuple[int, ...] = ()
    #: Every call of the partition the anomaly was found in (what a trace replays).
    partition: tuple[int, ...] = ()
    #: Commit identifiers a final-state anomaly names; :func:`check` finds their calls.
    subjects: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "message": self.message, "calls": list(self.calls)}


@attrs.define
class PartitionResult:
    nodes: tuple[str, ...]
    calls: tuple[int, ...]
    verdict: Verdict
    explored: int
    order: tuple[int, ...] = ()
    model: Model | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "nodes": list(self.nodes[:20]),
            "calls": len(self.calls),
            "verdict": self.verdict,
            "explored": self.explored,
        }


@attrs.define
class CheckResult:
    verdict: Verdict
    partitions: list[PartitionResult]
    anomalies: list[Anomaly]
    unknown: list[str]
    seconds: float
    checked_calls: int

    @property
    def explored(self) -> int:
        return sum(p.explored for p in self.partitions)

    def counts(self) -> dict[str, int]:
        out = {"pass": 0, "anomaly": 0, "unknown": 0}
        for p in self.partitions:
            out[p.verdict] += 1
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "seconds": round(self.seconds, 3),
            "checked_calls": self.checked_calls,
            "explored_states": self.explored,
            "partitions": self.counts(),
            "largest_partition": max((len(p.calls) for p in self.partitions), default=0),
            "anomalies": [a.to_json() for a in self.anomalies],
            "unknown": self.unknown,
        }


# ---------------------------------------------------------------------------- replay


def call_args(call: Call) -> tuple[Any, ...]:
    """The call's arguments as the model and targets take them (resolve keys typed)."""
    if call.operation == "resolve":
        kind, key_kind, key = call.args
        typed: int | UUID | str = (
            int(key) if key_kind == "pk" else UUID(str(key)) if key_kind == "id" else str(key)
        )
        return (kind, typed)
    return call.args


def fast_clone(model: Model, mutable: Iterable[str] | None = None) -> Model:
    """A copy sharing what the model never mutates: commits, trees and operation lists.

    Branches and migrations are copied (their head, status and trees move), only
    those named in ``mutable`` when given (``branch:<name>``, ``migration:<name>``);
    a new entity's :class:`Key` is bound in the step that creates it, before any copy.
    """
    if mutable is None:
        branches = {k: _copy_branch(b) for k, b in model.branches.items()}
        migrations = {k: copy.copy(m) for k, m in model.migrations.items()}
    else:
        branches, migrations = dict(model.branches), dict(model.migrations)
        for node in mutable:
            kind, _, name = node.partition(":")
            if kind == "branch" and name in branches:
                branches[name] = _copy_branch(branches[name])
            elif kind == "migration" and name in migrations:
                migrations[name] = copy.copy(migrations[name])
    return Model(
        branches=branches,
        commits=dict(model.commits),
        migrations=migrations,
        bindings=model.bindings.clone(),
        order=dict(model.order),
    )


def _copy_branch(b: Branch) -> Branch:
    return Branch(b.key, b.parent, b.head, b.status, b.version, b.tree, b.recorded)


def _mutable(model: Model, call: Call) -> list[str]:
    """What ``call`` may change in ``model`` (so a clone copies only that)."""
    op, args = call.operation, call.args
    if op in ("commit", "delete_branch", "apply_migration"):
        return [f"branch:{args[0]}"]
    if op == "merge":
        return [f"branch:{args[1]}"]
    if op == "rollback_migration":
        migration = model.migrations.get(str(args[0]))
        return [] if migration is None else [f"branch:{migration.branch}", f"migration:{args[0]}"]
    return []


def _problems(predicted: Predicted, result: Any) -> list[str]:
    r: Mapping[str, Any] = result if isinstance(result, Mapping) else {}
    pairs: list[tuple[str, Any, Any]] = []
    kind = predicted.kind
    if kind in ("delete_branch", "rollback_migration"):
        pairs.append(("result", None, result))
    elif kind in ("create_branch", "resolve"):
        pairs.append(("identifier", predicted.identifier, r.get("identifier")))
    elif kind == "commit":
        pairs += [
            ("commit identifier", predicted.identifier, r.get("identifier")),
            ("version", predicted.version, r.get("version")),
            ("schema_hash", predicted.schema_hash, r.get("schema_hash")),
        ]
    elif kind == "apply_migration":
        pairs += [
            ("migration identifier", predicted.identifier, r.get("identifier")),
            ("checksum", predicted.checksum, r.get("checksum")),
        ]
    elif kind == "merge":
        pairs += [
            ("merge kind", predicted.merge_kind, r.get("kind")),
            ("version", predicted.version, r.get("version")),
            ("merge commit", predicted.identifier, r.get("identifier")),
        ]
    elif kind == "log":
        pairs.append(("log", list(predicted.values), result))
    return [f"{what}: model={m!r} db={d!r}" for what, m, d in pairs if m != d]


def step(model: Model, call: Call) -> str | None:
    """Run ``call`` on ``model`` (mutating it); a text saying how it disagrees, or None."""
    try:
        predicted: Predicted | None = getattr(model, call.operation)(*call_args(call))
        error: DomainError | None = None
    except DomainError as exc:
        predicted, error = None, exc
    if call.status == "error":
        if error is None:
            return f"model: ok {predicted}; db: error {call.sqlstate} {call.kind}"
        if error.outcome != (call.sqlstate, call.kind):
            return (
                f"model: error {error.sqlstate} {error.kind}; db: error {call.sqlstate} {call.kind}"
            )
        return None
    if error is not None:
        return f"model: error {error.sqlstate} {error.kind}; db: ok {call.result!r}"
    assert predicted is not None
    problems = _problems(predicted, call.result)
    if problems:
        return "; ".join(problems)
    trinity = trinity_of(call)
    if trinity is None:
        return None
    kind, identifier, pk, id = trinity
    laws = LOOKUP if call.operation == "resolve" else ENTITY_KEY
    for value in trinity_opaque(_kind(kind), TrinityId(pk, id, identifier), laws):
        broken = model.bindings.learn(value, sequential=False)
        if broken is not None:
            return f"Trinity ID property broken: {broken}"
    return None


def _kind(kind: str) -> Kind:
    assert kind in ("branch", "commit", "migration"), kind
    return kind  # type: ignore[return-value]


# ------------------------------------------------------------------------- partitions


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        self.parent.setdefault(x, x)
        root = x
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[x] != root:
            self.parent[x], x = root, self.parent[x]
        return root

    def union(self, nodes: Sequence[str]) -> None:
        for other in nodes[1:]:
            a, b = self.find(nodes[0]), self.find(other)
            if a != b:
                self.parent[b] = a


def touches(call: Call, keys: Mapping[tuple[str, str, str], str]) -> list[str]:
    """The things a call reads or changes, as ``kind:identifier`` nodes."""
    op, args = call.operation, call.args
    nodes: list[str]
    if op == "create_branch":
        nodes = [f"branch:{args[0]}", f"branch:{args[1]}"]
    elif op in ("delete_branch", "commit", "log"):
        nodes = [f"branch:{args[0]}"]
    elif op == "apply_migration":
        nodes = [f"branch:{args[0]}", f"migration:{args[1]}"]
    elif op == "rollback_migration":
        nodes = [f"migration:{args[0]}"]
    elif op == "merge":
        nodes = [f"branch:{args[0]}", f"branch:{args[1]}"]
    elif op == "resolve":
        kind, key_kind, key = (str(a) for a in args)
        ident = key if key_kind == "identifier" else keys.get((kind, key_kind, key))
        nodes = [f"{kind}:{ident}" if ident is not None else f"{kind}:{key_kind}:{key}"]
    else:
        nodes = ["global"]
    trinity = trinity_of(call)
    if trinity is not None and op in ("commit", "merge"):
        nodes.append(f"commit:{trinity[1]}")
    return nodes


def partition(calls: Sequence[Call]) -> list[list[Call]]:
    """Group calls so that calls in different groups touch nothing in common."""
    keys: dict[tuple[str, str, str], str] = {}
    for call in calls:
        trinity = trinity_of(call)
        if trinity is not None:
            kind, ident, pk, id = trinity
            keys[(kind, "pk", str(pk))] = ident
            keys[(kind, "id", str(id))] = ident
    uf = _UnionFind()
    nodes_of = {}
    for call in calls:
        nodes = touches(call, keys)
        nodes_of[call.index] = nodes
        if not call.aborted:
            uf.union(nodes)
        else:
            uf.find(nodes[0])
    groups: dict[str, list[Call]] = defaultdict(list)
    for call in calls:
        groups[uf.find(nodes_of[call.index][0])].append(call)
    return sorted(groups.values(), key=lambda g: g[0].invoke)


# ------------------------------------------------------------------------------ search


class _Fingerprints:
    """Cheap state keys: trees are immutable and shared, so cache theirs by identity."""

    def __init__(self) -> None:
        self._trees: dict[int, tuple[Tree, object]] = {}

    def tree(self, tree: Tree) -> object:
        cached = self._trees.get(id(tree))
        if cached is not None and cached[0] is tree:
            return cached[1]
        key = (hashing.tree_hash(tree), tuple((n, t.rows) for n, t in tree.tables.items()))
        self._trees[id(tree)] = (tree, key)
        return key

    def model(self, model: Model, branches: Iterable[str]) -> object:
        """The state of ``branches`` (those a partition's calls touch) and of migrations."""
        parts = []
        for name in branches:
            b = model.branches.get(name)
            if b is not None:
                parts.append(
                    (name, b.head, b.status, b.version, self.tree(b.tree), self.tree(b.recorded))
                )
        return (tuple(parts), tuple((n, m.status) for n, m in model.migrations.items()))


@attrs.define
class _Failure:
    depth: int = -1
    applied: tuple[int, ...] = ()
    tried: list[tuple[int, str]] = attrs.field(factory=list)
    final: str | None = None


def search(  # noqa: PLR0915 (one search loop, read as a whole)
    calls: Sequence[Call],
    start: Model,
    bound: int = DEFAULT_BOUND,
    goal: _FinalState | None = None,
) -> tuple[Verdict, int, tuple[int, ...], Model | None, _Failure]:
    """Depth-first search for a serial order of ``calls`` (see the module docstring).

    ``goal`` is the database's final state: a complete order must end in it, and a
    branch is compared as soon as every call touching it is placed (early pruning).
    Candidates are tried in completion order: calls serialised by a lock usually
    complete in the order they ran.
    """
    ops = sorted((c for c in calls if not c.aborted), key=lambda c: (c.invoke, c.index))
    n = len(ops)
    full = (1 << n) - 1
    fps = _Fingerprints()
    names = sorted(
        {n.split(":", 1)[1] for c in ops for n in touches(c, {}) if n.startswith("branch:")}
    )
    # Which calls may change each branch: those naming it, and rollbacks of migrations
    # applied on it (a rollback names only the migration).
    applied_on = {
        str(c.args[1]): str(c.args[0])
        for c in ops
        if c.operation == "apply_migration" and c.status == "ok"
    }
    masks: dict[str, int] = defaultdict(int)
    for i, c in enumerate(ops):
        for node in touches(c, {}):
            if node.startswith("branch:"):
                masks[node.split(":", 1)[1]] |= 1 << i
        if c.operation == "rollback_migration" and str(c.args[0]) in applied_on:
            masks[applied_on[str(c.args[0])]] |= 1 << i
    seen: set[tuple[int, object]] = set()
    failure = _Failure()
    # A stack of (applied bitmask, model, path as a linked list, depth).
    stack: list[tuple[int, Model, Any, int]] = [(0, start, None, 0)]
    explored = 0
    while stack:
        applied, model, path, depth = stack.pop()
        # Calls that do not change the state (reads, expected errors) go first, greedily:
        # placing one as early as real time allows never removes a valid order.
        progressed = True
        while progressed:
            progressed = False
            for i in _frontier(ops, applied):
                call = ops[i]
                if call.operation in _READS or call.status == "error":
                    probe = (
                        model
                        if call.operation in _READS
                        else fast_clone(model, _mutable(model, call))
                    )
                    if step(probe, call) is None:
                        applied |= 1 << i
                        path = (call.index, path)
                        depth += 1
                        progressed = True
        if applied == full:
            problem = goal(model) if goal is not None else None
            if problem is None:
                return "pass", explored, _unlink(path), model, failure
            if failure.depth <= depth:
                failure = _Failure(depth, _unlink(path), [], problem)
            explored += 1
            if explored > bound:
                return "unknown", explored, (), None, failure
            continue
        key = (applied, fps.model(model, names))
        if key in seen:
            continue
        seen.add(key)
        explored += 1
        if explored > bound:
            return "unknown", explored, (), None, failure
        children = []
        tried = []
        for i in sorted(_frontier(ops, applied), key=lambda i: ops[i].complete):
            call = ops[i]
            clone = model if call.operation in _READS else fast_clone(model, _mutable(model, call))
            problem = step(clone, call)
            if problem is None and goal is not None:
                done = applied | 1 << i
                for node in _mutable(clone, call):
                    name = node.split(":", 1)[1]
                    if node.startswith("branch:") and done & masks[name] == masks[name]:
                        problem = problem or goal.branch_problem(clone, name)
            if problem is None:
                children.append((applied | 1 << i, clone, (call.index, path), depth + 1))
            else:
                tried.append((call.index, problem))
        if not children and depth > failure.depth:
            failure = _Failure(depth, _unlink(path), tried)
        stack.extend(reversed(children))
    return "anomaly", explored, (), None, failure


def _frontier(ops: Sequence[Call], applied: int) -> list[int]:
    """Unapplied calls no unapplied call completed before (ops sorted by invoke)."""
    out: list[int] = []
    horizon = float("inf")
    low = (~applied & (applied + 1)).bit_length() - 1  # the first unapplied call
    for i in range(low, len(ops)):
        if applied >> i & 1:
            continue
        call = ops[i]
        if call.invoke > horizon:
            break
        out.append(i)
        horizon = min(horizon, call.complete)
    return [i for i in out if ops[i].invoke <= horizon]


def _unlink(path: Any) -> tuple[int, ...]:
    out = []
    while path is not None:
        out.append(path[0])
        path = path[1]
    return tuple(reversed(out))


# ------------------------------------------------------------------------------- check


def initial_model(final: Snapshot | None) -> Model:
    """``Model.initial()`` with main and its root commit bound to the database's keys."""
    model = Model.initial()
    if final is None:
        return model
    for kind, rows in (("branch", final.branches), ("commit", final.commits)):
        for name, row in rows.items():
            if name in model.entities(_kind(kind)) and row.pk is not None and row.id is not None:
                keys = TrinityId(row.pk, row.id, name)
                for value in trinity_opaque(_kind(kind), keys, ENTITY_KEY):
                    model.bindings.learn(value, sequential=False)
    return model


def check(
    history: Sequence[Call],
    *,
    setup: Sequence[Call] = (),
    final: Snapshot | None = None,
    bound: int = DEFAULT_BOUND,
) -> CheckResult:
    """Check a run: ``setup`` calls ran alone first, then ``history`` in parallel."""
    t0 = time.perf_counter()
    anomalies: list[Anomaly] = []
    unknown: list[str] = []
    base = initial_model(final)
    for call in setup:
        problem = step(base, call)
        if problem is not None:
            anomalies.append(Anomaly("setup", f"{call.describe()}: {problem}", (call.index,)))
    by_index = {c.index: c for c in [*setup, *history]}
    indeterminate = [c for c in history if c.status == "indeterminate"]
    if indeterminate:
        unknown.append(
            f"{len(indeterminate)} calls lost their connection mid-call (their effect is "
            "unknown); their partitions are not searched"
        )
    results: list[PartitionResult] = []
    for group in partition(history):
        nodes = tuple(sorted({n for c in group for n in touches(c, {})}))
        indices = tuple(c.index for c in group)
        if any(c.status == "indeterminate" for c in group):
            results.append(PartitionResult(nodes, indices, "unknown", 0))
            continue
        goal = _FinalState(nodes, final) if final is not None else None
        verdict, explored, order, model, failure = search(group, fast_clone(base), bound, goal)
        results.append(PartitionResult(nodes, indices, verdict, explored, order, model))
        if verdict == "unknown":
            final_note = (
                "; complete orders were found but ended in another final state"
                if failure.final is not None
                else ""
            )
            unknown.append(
                f"partition {_nodes_text(nodes)} ({len(group)} calls): search bound {bound} "
                f"hit; the longest dead end placed {failure.depth} calls{final_note}"
            )
        elif verdict == "anomaly":
            anomalies.append(_no_order(group, failure, by_index))
    anomalies += id_anomalies([*setup, *history], final)
    if final is not None:
        calls = [*setup, *history]
        anomalies += [_with_calls(a, calls, results) for a in state_anomalies(final)]
        if all(p.verdict == "pass" for p in results) and not indeterminate:
            composed = compose(base, results)
            expected = from_model(composed)
            if expected != final:
                anomalies.append(
                    Anomaly(
                        "final_state",
                        "the database's final state differs from the model's after the "
                        "serial order found:\n" + diff.render(expected, final),
                    )
                )
    overall: Verdict = "anomaly" if anomalies else "unknown" if unknown else "pass"
    checked = sum(1 for c in history if not c.aborted)
    return CheckResult(overall, results, anomalies, unknown, time.perf_counter() - t0, checked)


def _project(snapshot: Snapshot, nodes: Sequence[str]) -> Snapshot:
    """The part of a snapshot that the calls touching ``nodes`` own."""
    names = {
        kind: {n.split(":", 1)[1] for n in nodes if n.startswith(kind + ":")}
        for kind in ("branch", "commit", "migration")
    }
    branches = {n: r for n, r in snapshot.branches.items() if n in names["branch"]}
    schemas = {r.schema_name for r in branches.values() if r.status == "active"}
    return Snapshot(
        branches,
        {n: r for n, r in snapshot.commits.items() if n in names["commit"]},
        {n: r for n, r in snapshot.migrations.items() if n in names["migration"]},
        {n: t for n, t in snapshot.trees.items() if n in schemas},
    )


class _FinalState:
    """The database's final state as a search goal for one partition."""

    def __init__(self, nodes: Sequence[str], final: Snapshot) -> None:
        self.nodes = nodes
        self.final = final
        self.expected = _project(final, nodes)

    def __call__(self, model: Model) -> str | None:
        mine = _project(from_model(model), self.nodes)
        return None if mine == self.expected else diff.render(mine, self.expected)

    def branch_problem(self, model: Model, name: str) -> str | None:
        """How branch ``name`` (row and tree) differs from the final state, or None."""
        mine = from_model(Model(branches={name: model.branches[name]}, bindings=model.bindings))
        row = mine.branches[name]
        theirs = self.final.branches.get(name)
        schema = row.schema_name
        same_tree = (
            row.status != "active"
            or schema is None
            or mine.trees.get(schema) == self.final.trees.get(schema)
        )
        if row == theirs and same_tree:
            return None
        trees = (
            {schema: self.final.trees[schema]}
            if schema is not None and schema in self.final.trees
            else {}
        )
        db = Snapshot({name: theirs} if theirs is not None else {}, {}, {}, trees)
        if row.status != "active" or schema is None:
            mine = Snapshot(mine.branches, {}, {}, {})
        else:
            mine = Snapshot(mine.branches, {}, {}, {schema: mine.trees[schema]})
        return f"branch {name!r} ends differently (model vs database):\n" + diff.render(mine, db)


def _nodes_text(nodes: Sequence[str]) -> str:
    shown = ", ".join(nodes[:6])
    return f"{{{shown}{', …' if len(nodes) > 6 else ''}}}"


def _no_order(group: Sequence[Call], failure: _Failure, by_index: Mapping[int, Call]) -> Anomaly:
    nodes = sorted({n for c in group for n in touches(c, {})})
    lines = [
        f"no serial order of the {len(group)} calls on {_nodes_text(nodes)} respects real "
        f"time and reproduces every result; the longest consistent prefix has "
        f"{failure.depth} calls, after which no call fits:"
    ]
    if failure.final is not None:
        lines[0] = (
            f"no serial order of the {len(group)} calls on {_nodes_text(nodes)} both "
            "reproduces every result and ends in the database's final state; the last "
            "complete order tried ends differently (model vs database):"
        )
        lines.append(failure.final)
    for index, problem in failure.tried:
        lines.append(f"  {by_index[index].describe()}\n      {problem}")
    tail = failure.applied[-5:]
    if tail:
        lines.append("  last calls of that prefix:")
        lines += [f"    {by_index[i].describe()}" for i in tail]
    involved = tuple(i for i, _ in failure.tried) + tail
    partition = tuple(c.index for c in group)
    return Anomaly("no_serial_order", "\n".join(lines), involved, partition)


def compose(base: Model, results: Iterable[PartitionResult]) -> Model:
    """One model from the partitions' final models (they touched disjoint entities)."""
    out = fast_clone(base)
    for p in results:
        assert p.model is not None
        out.bindings.absorb(p.model.bindings)
        branches = {n.split(":", 1)[1] for n in p.nodes if n.startswith("branch:")}
        for name, branch in p.model.branches.items():
            if name in branches or name not in out.branches:
                out.branches[name] = branch
        for ident, commit in p.model.commits.items():
            out.commits.setdefault(ident, commit)
        for ident, migration in p.model.migrations.items():
            if ident not in out.migrations or f"migration:{ident}" in p.nodes:
                out.migrations[ident] = migration
    return out


def id_anomalies(calls: Sequence[Call], final: Snapshot | None) -> list[Anomaly]:
    """Trinity IDs: one (pk, id) per identifier, no pk or id shared by two identifiers."""
    keys: dict[tuple[str, str], tuple[int, UUID, int | None]] = {}
    for call in calls:
        trinity = trinity_of(call)
        if trinity is not None:
            kind, ident, pk, id = trinity
            keys.setdefault((kind, ident), (pk, id, call.index))
    out: list[Anomaly] = []
    if final is not None:
        for kind, rows in (
            ("branch", final.branches),
            ("commit", final.commits),
            ("migration", final.migrations),
        ):
            for ident, row in rows.items():
                if "#" in ident and ident.split("#")[0] in rows:
                    out.append(Anomaly("duplicate_id", f"{kind} identifier {ident!r} twice"))
                assert row.pk is not None
                assert row.id is not None
                seen = keys.get((kind, ident))
                if seen is not None and seen[:2] != (row.pk, row.id):
                    out.append(
                        Anomaly(
                            "changed_id",
                            f"{kind} {ident!r} was returned as {seen[:2]} but the database "
                            f"holds ({row.pk}, {row.id})",
                            (seen[2],) if seen[2] is not None else (),
                        )
                    )
                keys.setdefault((kind, ident), (row.pk, row.id, None))
        for (kind, ident), (_, _, index) in keys.items():
            rows_of = {"branch": final.branches, "commit": final.commits}
            table = rows_of.get(kind, final.migrations)
            if ident not in table:
                out.append(
                    Anomaly(
                        "lost",
                        f"{kind} {ident!r} was created (call #{index}) but is not in the database",
                        (index,) if index is not None else (),
                    )
                )
    pks: dict[tuple[str, int], str] = {}
    ids: dict[UUID, str] = {}
    for (kind, ident), (pk, id, index) in sorted(keys.items()):
        other = pks.setdefault((kind, pk), ident)
        if other != ident:
            out.append(
                Anomaly(
                    "duplicate_id",
                    f"{kind} pk {pk} belongs to both {other!r} and {ident!r}",
                    (index,) if index is not None else (),
                )
            )
        other = ids.setdefault(id, f"{kind} {ident}")
        if other != f"{kind} {ident}":
            out.append(
                Anomaly(
                    "duplicate_id",
                    f"id {id} belongs to both {other!r} and {kind} {ident!r}",
                    (index,) if index is not None else (),
                )
            )
    return out


def state_anomalies(final: Snapshot) -> list[Anomaly]:
    """Invariants of the final state alone: linear branch history, consistent versions."""
    out: list[Anomaly] = []
    commits = final.commits
    children: dict[tuple[str, str], list[str]] = defaultdict(list)
    for ident, c in commits.items():
        if c.parents:
            children[(c.branch, c.parents[0])].append(ident)
            parent = commits.get(c.parents[0])
            if parent is not None and c.version not in _bumps(parent.version):
                out.append(
                    Anomaly(
                        "version",
                        f"commit {ident!r} has version {c.version} after its first parent's "
                        f"{parent.version}",
                    )
                )
    for (branch, first), kids in children.items():
        if len(kids) > 1:
            out.append(
                Anomaly(
                    "fork",
                    f"branch {branch!r} forked: commits {sorted(kids)} all have first parent "
                    f"{first!r} (a lost update)",
                    subjects=tuple(sorted(kids)),
                )
            )
    for name, b in final.branches.items():
        head = commits.get(b.head)
        if head is None:
            out.append(Anomaly("dangling_head", f"branch {name!r} head {b.head!r} is no commit"))
            continue
        if b.version != head.version:
            out.append(
                Anomaly(
                    "version",
                    f"branch {name!r} has version {b.version} but its head {b.head!r} has "
                    f"{head.version}",
                )
            )
        seen, current = set(), b.head
        while current in commits and commits[current].parents:
            if current in seen:
                out.append(Anomaly("cycle", f"branch {name!r}: first-parent chain loops"))
                break
            seen.add(current)
            current = commits[current].parents[0]
        else:
            if current not in commits:
                out.append(Anomaly("dangling_parent", f"branch {name!r}: {current!r} missing"))
    return out


def _with_calls(
    anomaly: Anomaly, calls: Sequence[Call], results: Sequence[PartitionResult]
) -> Anomaly:
    """A final-state anomaly with the calls that made the commits it names, and their
    partition: what a timeline outlines and a trace replays."""
    if not anomaly.subjects:
        return anomaly
    made: dict[str, int] = {}
    for call in calls:
        trinity = trinity_of(call)
        if trinity is not None and trinity[0] == "commit":
            made.setdefault(trinity[1], call.index)
    involved = tuple(made[s] for s in anomaly.subjects if s in made)
    if not involved:
        return anomaly
    partition = next((p.calls for p in results if involved[0] in p.calls), ())
    return attrs.evolve(anomaly, calls=involved, partition=partition)


def _bumps(version: str) -> set[str]:
    return {versions.bump(version, change) for change in ("major", "minor", "patch")}


__all__ = ["Anomaly", "CheckResult", "PartitionResult", "call_args", "check", "search", "step"]
