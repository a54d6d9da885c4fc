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

from modelcheck._domain.errors import DomainError
from modelcheck._domain.model import Model

#: Nodes the depth-first search may visit per check before it answers "unknown".
SEARCH_BOUND: Final = 5_000

_READS: Final = frozenset({"log", "resolve", "verify"})


@attrs.frozen
class Observed:
    """One statement as the database answered it: a result or a DomainError."""

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
    model: Model | None = None
    searched: bool = False
    reason: str = ""
    closest: Model | None = None


def replay(model: Model, observed: Observed, check_reads: bool) -> str | None:
    """Apply one observed statement to ``model``; return why it cannot be, or None."""
    # Lazy: machine.py imports this module's users; the comparison rules live there once.
    from modelcheck.machine import _TRINITY_KIND, _result_problems, _trinity_of

    try:
        expected = getattr(model, observed.operation)(*observed.args)
        expected_error: DomainError | None = None
    except DomainError as error:
        expected, expected_error = None, error
    if observed.operation in _READS and not check_reads:
        return None
    actual = observed.outcome
    if isinstance(actual, DomainError):
        if expected_error is None:
            return f"{observed.operation}: model ok, db error {actual.sqlstate} {actual.kind}"
        if expected_error.outcome != actual.outcome:
            return (
                f"{observed.operation}: model error {expected_error.sqlstate} "
                f"{expected_error.kind}, db error {actual.sqlstate} {actual.kind}"
            )
        return None
    if expected_error is not None:
        return (
            f"{observed.operation}: model error {expected_error.sqlstate} {expected_error.kind}, "
            "db ok"
        )
    assert expected is not None
    problems = list(_result_problems(expected, actual, observed.args))
    if problems:
        return f"{observed.operation}{observed.args!r}: " + "; ".join(problems)
    kind = _TRINITY_KIND.get(observed.operation)
    trinity = _trinity_of(actual)
    try:
        if kind is not None and trinity is not None:
            model.bind(kind, trinity.identifier, trinity.pk, trinity.id, monotonic=False)
        if observed.operation == "resolve":
            key = model.entity_key(observed.args[0], actual.identifier)
            if (key.pk, key.id) != (actual.pk, actual.id):
                return f"resolve gave keys ({actual.pk}, {actual.id}), bound ({key.pk}, {key.id})"
    except AssertionError as exc:
        return f"Trinity ID property broken: {exc}"
    return None


def _state_key(model: Model) -> str:
    from modelcheck.snapshot import from_model

    return repr(from_model(model))


class Oracle:
    """Committed transactions since the last quiet point, and the model they lead to."""

    def __init__(self, base: Model) -> None:
        self.base = base
        self.unsettled: list[Committed] = []
        self.found: Model = base
        #: How many of ``unsettled`` the ``found`` model includes (a prefix, in some order).
        self.found_count = 0
        self.gave_up = False

    def commit(self, ops: list[Observed], checks_reads: bool, label: str, session: int) -> None:
        self.unsettled.append(Committed(tuple(ops), checks_reads, label, session))

    def give_up(self) -> None:
        """After an "unknown", the rest of this example cannot be judged soundly."""
        self.gave_up = True

    def settle(self) -> None:
        self.base = self.found
        self.unsettled = []
        self.found_count = 0

    def _extend(self, matches: Callable[[Model], bool]) -> Model | None:
        """The cheap path: the order found so far, then the new commits in commit order."""
        candidate = self.found.clone() if self.found_count < len(self.unsettled) else self.found
        for txn in self.unsettled[self.found_count :]:
            for observed in txn.ops:
                if replay(candidate, observed, txn.checks_reads) is not None:
                    return None
        return candidate if matches(candidate) else None

    def check(self, matches: Callable[[Model], bool]) -> Verdict:
        if self.gave_up:
            return Verdict("skipped", model=self.found)
        extended = self._extend(matches)
        if extended is not None:
            self.found, self.found_count = extended, len(self.unsettled)
            return Verdict("ok", model=extended)
        search = _Search(self.unsettled, matches)
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
    def __init__(self, txns: list[Committed], matches: Callable[[Model], bool]) -> None:
        self.txns = txns
        self.matches = matches
        self.nodes = 0
        self.exhausted = False
        self.seen: set[tuple[frozenset[int], str]] = set()
        self.best_depth = -1
        self.best_reason = ""
        self.best_model: Model | None = None
        self.reordered = False

    def run(self, base: Model) -> Model | None:
        return self._dfs(base, frozenset(), [])

    def _dfs(self, model: Model, applied: frozenset[int], order: list[int]) -> Model | None:
        if len(applied) == len(self.txns):
            if self.matches(model):
                self.reordered = order != sorted(order)
                return model
            self._note(len(applied), "the database state differs from the model", model)
            return None
        if len(applied) > 1:
            key = (applied, _state_key(model))
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
            candidate = model.clone()
            reason = None
            for observed in txn.ops:
                reason = replay(candidate, observed, txn.checks_reads)
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

    def _note(self, depth: int, reason: str, model: Model) -> None:
        if depth >= self.best_depth:
            self.best_depth = depth
            self.best_reason = reason
            self.best_model = model
