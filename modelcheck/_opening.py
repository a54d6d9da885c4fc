"""The opening of an example: the machine's scenario rules, each run or skipped by a draw.

Hypothesis draws rules very unevenly in a short run: it disables a random half of them
per example (swarm testing) and builds most examples by mutating earlier ones, so a
``dev`` ConcurrencyMachine run of 34 examples called ``same_key_race`` once and
``write_then_roll_back`` eighteen times. A bug only one scenario reaches then survives
by luck of the seed. A machine names its scenario rules in ``opening_rules``; every
example opens with each of them, in that order, run or skipped by one boolean draw.
Skipping is what the shrinker tries first, so a shrunk example keeps only the opening
scenarios its failure needs, and later steps stay Hypothesis's to choose.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine

from modelcheck.spec import InvalidDefinition

_RULE_MARKER = "hypothesis_stateful_rule"


def _rule_of(machine: type[RuleBasedStateMachine], name: str) -> Any:
    """Hypothesis's rule record of ``machine.<name>``, or InvalidDefinition."""
    found = getattr(getattr(machine, name, None), _RULE_MARKER, None)
    if found is None:
        raise InvalidDefinition(
            f"{machine.__qualname__}.opening_rules names {name!r}, which is not a @rule of "
            "the machine. To fix this, name one of its rules (docs/machines.md, "
            "'Scenarios every example opens with')."
        )
    return found


def check_opening(machine: type[RuleBasedStateMachine], names: Sequence[str]) -> None:
    """Every opening rule is a rule whose arguments are plain strategies: a Bundle
    argument would need values no step has made yet. (A rule with a ``target`` may
    open: what it returns there joins no Bundle, the model still has it.)"""
    for name in names:
        if _rule_of(machine, name).bundles:
            raise InvalidDefinition(
                f"{machine.__qualname__}.opening_rules names {name!r}, which draws from "
                "a Bundle; an example's opening runs before any step made values. To "
                "fix this, name a rule whose arguments are strategies only."
            )


def run_opening(machine: RuleBasedStateMachine, names: Sequence[str], data: st.DataObject) -> None:
    """Run each rule in ``names`` whose preconditions hold, unless its draw skips it."""
    for name in names:
        found = _rule_of(type(machine), name)
        if not data.draw(st.booleans(), label=f"open with {name}"):
            continue
        if not all(precondition(machine) for precondition in found.preconditions):
            continue
        arguments = data.draw(st.fixed_dictionaries(found.arguments), label=name)
        found.function(machine, **arguments)
