"""Reads inside transactions that do not serialize, checked against their snapshot.

The serial-order oracle cannot place a read of a READ COMMITTED or REPEATABLE READ
transaction: its snapshot may predate commits that the serial order puts before it.
But each level promises *which* snapshot a read sees (REPEATABLE READ and SERIALIZABLE:
the one taken at the transaction's first statement; READ COMMITTED: one per
statement). Where the committed state at that moment is known for sure, a read must
equal the model of that state with the transaction's own earlier statements applied.

Known for sure means: since the last quiet point (no transaction open anywhere, the
oracle settled), nothing that committed has changed anything. Every snapshot a
transaction open now can have taken is then the settled model. For READ COMMITTED
that lasts until something commits a change; for the snapshot levels, for the life of
the transaction. A *write* the view cannot reproduce (a unique index sees past the
snapshot; a row lock raises 40001) ends the view without a verdict: only reads are
judged here, writes stay the serial oracle's. This also judges the reads of
transactions that roll back or abort, which the serial oracle drops.
"""

from __future__ import annotations

from typing import Any, Final

import attrs

from modelcheck._serial import Observed, replay
from modelcheck.spec import OperationError, Spec

#: Levels whose snapshot is taken once, at the first statement.
FIXED_SNAPSHOT: Final = frozenset({"repeatable read", "serializable"})


@attrs.define
class View:
    """A transaction's snapshot as a model, with its own statements applied so far."""

    model: Any = None
    applied: int = 0  # how many of the transaction's statements have been looked at
    lost: bool = False


@attrs.frozen
class ViewVerdict:
    checked: int = 0
    unchecked: int = 0
    #: Why a read differs from its snapshot (None: no read did).
    violation: str | None = None


def check_new_statements(
    spec: Spec[Any, Any],
    view: View,
    isolation: str,
    ops: list[Observed],
    known: Any,
) -> ViewVerdict:
    """Replay ``ops[view.applied:]`` on the view; judge the reads among them.

    ``known``: the committed state for sure now, or None (see the module docstring).
    """
    new = ops[view.applied :]
    view.applied = len(ops)
    reads = sum(spec.operation(o.operation).reads_only for o in new)
    if view.lost:
        return ViewVerdict(unchecked=reads)
    if view.model is None or isolation not in FIXED_SNAPSHOT:
        if known is None:
            view.lost, view.model = True, None
            return ViewVerdict(unchecked=reads)
        if view.model is None:
            # Every statement so far ran on the settled state: replay them all.
            view.model = spec.clone(known)
            new = ops
            reads = sum(spec.operation(o.operation).reads_only for o in new)
    checked = 0
    for position, observed in enumerate(new):
        row = spec.operation(observed.operation)
        outcome = observed.outcome
        aborted = isinstance(outcome, OperationError) and outcome.sqlstate in spec.legal_aborts
        reason = None if aborted else replay(spec, view.model, observed, True)
        if reason is None and not aborted:
            checked += row.reads_only
            continue
        if row.reads_only and reason is not None:
            return ViewVerdict(checked, reads - checked - 1, reason)
        rest = new[position + 1 :]
        view.lost, view.model = True, None
        return ViewVerdict(
            checked,
            row.reads_only + sum(spec.operation(o.operation).reads_only for o in rest),
        )
    return ViewVerdict(checked)


__all__ = ["FIXED_SNAPSHOT", "View", "ViewVerdict", "check_new_statements"]
