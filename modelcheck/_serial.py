"""The concurrency oracle: find a serial order of committed transactions that explains
every observed result and the database's state.

Commit order is not serial order (under SERIALIZABLE a later committer can serialize
first), so the oracle searches: depth-first over the committed-but-unsettled
transactions, keeping each connection's order, replaying each transaction's
statements on a clone of the model and pruning as soon as an observed result
disagrees; memoised on (applied set, model state); bounded. Hitting the bound gives
"unknown", never "pass". Once no transaction is open the found order is final and
becomes the new base ("settled").
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, Literal

import attrs

from modelcheck.spec import OperationError, Spec

#: Nodes the depth-first search may visit per check before it answers "unknown".
SEARCH_BOUND: Final = 5_000


@attrs.frozen
class Observed:
    """One statement as the database answered it: a result or an OperationError."""

    operation: str
    args: tuple[Any, ...]
    outcome: Any


@attrs.frozen
class Committed:
    ops: tuple[Observed, ...]
    checks_reads: bool
    label: str
    session: int


@attrs.define
class Verdict:
    outcome: Literal["ok", "unknown", "violation", "skipped"]
    model: Any = None
    searched: bool = False
    reason: str = ""
    closest: Any = None


def replay(spec: Spec[Any, Any], model: Any, observed: Observed, check_reads: bool) -> str | None:
    """Apply one observed statement to ``model``; return why it cannot be, or None."""
    row = spec.operation(observed.operation)
    expected: Any = None
    expected_error: OperationError | None = None
    try:
        expected = spec.apply(model, observed.operation, observed.args)
    except OperationError as error:
        expected_error = error
    if row.reads_only and not check_reads:
        return None
    actual = observed.outcome
    name = observed.operation
    if isinstance(actual, OperationError):
        if expected_error is None:
            return f"{name}: model ok, db error {actual.sqlstate} {actual.kind}"
        if expected_error.outcome != actual.outcome:
            return (
                f"{name}: model error {expected_error.sqlstate} {expected_error.kind}, "
                f"db error {actual.sqlstate} {actual.kind}"
            )
        return None
    if expected_error is not None:
        return f"{name}: model error {expected_error.sqlstate} {expected_error.kind}, db ok"
    problems = list(row.compare(expected, actual, observed.args))
    if not problems:
        bindings = spec.bindings(model)
        for value in row.opaque(actual, observed.args):
            broken = bindings.learn(value, sequential=False, required=True)
            if broken is not None:
                problems.append(f"opaque value broke a law: {broken}")
    if problems:
        return f"{name}{observed.args!r}: " + "; ".join(problems)
    return None


def _state_key(spec: Spec[Any, Any], model: Any) -> str:
    return repr(spec.expected(model, full=True))


class Oracle:
    """Committed transactions since the last quiet point, and the model they lead to."""

    def __init__(self, spec: Spec[Any, Any], base: Any) -> None:
        self.spec = spec
        self.base = base
        self.unsettled: list[Committed] = []
        self.found: Any = base
        #: How many of ``unsettled`` the ``found`` model includes (a prefix, in some order).
        self.found_count = 0
        self.gave_up = False

    def commit(self, ops: list[Observed], checks_reads: bool, label: str, session: int) -> None:
        self.unsettled.append(Committed(tuple(ops), checks_reads, label, session))

    def give_up(self) -> None:
        """After an "unknown", the rest of this example cannot be judged soundly."""
        self.gave_up = True

    def known_state(self) -> Any:
        """The committed state for sure: the settled model while nothing committed since
        changed anything (only reads and failed statements); None otherwise, or once the
        oracle gave up."""
        if self.gave_up:
            return None
        for txn in self.unsettled:
            for observed in txn.ops:
                failed = isinstance(observed.outcome, OperationError)
                if not failed and not self.spec.operation(observed.operation).reads_only:
                    return None
        return self.base

    def settle(self) -> None:
        self.base = self.found
        self.unsettled = []
        self.found_count = 0

    def _extend(self, matches: Callable[[Any], bool]) -> Any:
        """The cheap path: the order found so far, then the new commits in commit order."""
        candidate = (
            self.spec.clone(self.found) if self.found_count < len(self.unsettled) else self.found
        )
        for txn in self.unsettled[self.found_count :]:
            for observed in txn.ops:
                if replay(self.spec, candidate, observed, txn.checks_reads) is not None:
                    return None
        return candidate if matches(candidate) else None

    def check(self, matches: Callable[[Any], bool]) -> Verdict:
        if self.gave_up:
            return Verdict("skipped", model=self.found)
        extended = self._extend(matches)
        if extended is not None:
            self.found, self.found_count = extended, len(self.unsettled)
            return Verdict("ok", model=extended)
        search = _Search(self.spec, self.unsettled, matches)
        order = search.run(self.base)
        if order is None:
            if search.exhausted:
                return Verdict("unknown", model=self.found)
            return Verdict(
                "violation",
                reason=search.best_reason or "the final state matches no serial order",
                closest=search.best_model,
            )
        self.found, self.found_count = order, len(self.unsettled)
        return Verdict("ok", model=order, searched=True)


class _Search:
    def __init__(
        self, spec: Spec[Any, Any], txns: list[Committed], matches: Callable[[Any], bool]
    ) -> None:
        self.spec = spec
        self.txns = txns
        self.matches = matches
        self.nodes = 0
        self.exhausted = False
        self.seen: set[tuple[frozenset[int], str]] = set()
        self.best_depth = -1
        self.best_reason = ""
        self.best_model: Any = None
        self.reordered = False

    def run(self, base: Any) -> Any:
        return self._dfs(base, frozenset(), [])

    def _dfs(self, model: Any, applied: frozenset[int], order: list[int]) -> Any:
        if len(applied) == len(self.txns):
            if self.matches(model):
                self.reordered = order != sorted(order)
                return model
            self._note(len(applied), "the database state differs from the model", model)
            return None
        if len(applied) > 1:
            key = (applied, _state_key(self.spec, model))
            if key in self.seen:
                return None
            self.seen.add(key)
        for index, txn in enumerate(self.txns):
            if index in applied or self._earlier_open(index, applied):
                continue
            self.nodes += 1
            if self.nodes > SEARCH_BOUND:
                self.exhausted = True
                return None
            candidate = self.spec.clone(model)
            reason = None
            for observed in txn.ops:
                reason = replay(self.spec, candidate, observed, txn.checks_reads)
                if reason is not None:
                    break
            if reason is not None:
                self._note(len(applied), f"{txn.label}: {reason}", model)
                continue
            found = self._dfs(candidate, applied | {index}, [*order, index])
            if found is not None or self.exhausted:
                return found
        return None

    def _earlier_open(self, index: int, applied: frozenset[int]) -> bool:
        """A connection's transactions serialize in that connection's order."""
        session = self.txns[index].session
        return any(j not in applied and self.txns[j].session == session for j in range(index))

    def _note(self, depth: int, reason: str, model: Any) -> None:
        if depth >= self.best_depth:
            self.best_depth = depth
            self.best_reason = reason
            self.best_model = model
