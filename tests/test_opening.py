"""Short runs reach every scenario: ``draw_unvisited`` visits each option of a scenario
before it repeats one, and ``opening_rules`` open every example with the scenarios."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import hypothesis
import pytest
from _stand_ins import Draw
from hypothesis import HealthCheck
from hypothesis.stateful import rule

from modelcheck.machine import MachineEnvironment, run_machine
from modelcheck.spec import InvalidDefinition
from modelcheck.suites.vstore.rules import BranchRules, DomainMachine

pytestmark = pytest.mark.postgres


def _position(position: int) -> Any:
    """A data object whose every draw is ``position``."""
    return Draw(position)


@pytest.fixture(scope="module")
def environment(reference_environment: MachineEnvironment) -> MachineEnvironment:
    return reference_environment


@pytest.fixture
def branch_machine(environment: MachineEnvironment) -> Iterator[BranchRules]:
    m = BranchRules(environment)
    try:
        yield m
    finally:
        m.teardown()


def test_draw_unvisited_visits_every_option_before_repeating_one(
    branch_machine: BranchRules,
) -> None:
    options = ("a", "b", "c", "d")
    same_position = _position(1)
    first_round = [branch_machine.draw_unvisited(same_position, options, "x") for _ in options]
    assert first_round == ["b", "c", "d", "a"], "the next unvisited, cyclically"
    second_round = [branch_machine.draw_unvisited(same_position, options, "x") for _ in options]
    assert sorted(second_round) == sorted(options), "a new round once all had their turn"
    assert branch_machine.draw_unvisited(_position(2), options, "y") == "c", "labels apart"
    assert branch_machine.coverage.choices["x"] == dict.fromkeys(options, 2)
    with pytest.raises(ValueError, match="no options"):
        branch_machine.draw_unvisited(same_position, (), "z")


def test_a_new_example_starts_a_new_round(environment: MachineEnvironment) -> None:
    drawn = []
    for _ in range(2):
        m = BranchRules(environment)
        try:
            drawn.append(m.draw_unvisited(_position(0), ("a", "b"), "x"))
        finally:
            m.teardown()
    assert drawn == ["a", "a"], "no visits carried from one example to the next"


def test_an_opening_rule_must_be_a_rule_without_bundle_arguments() -> None:
    with pytest.raises(InvalidDefinition, match="not a @rule"):

        class Unknown(BranchRules):
            opening_rules = ("no_such_rule",)

    with pytest.raises(InvalidDefinition, match="draws from a Bundle"):

        class FromBundle(BranchRules):
            opening_rules = ("needs_a_branch",)

            @rule(name=DomainMachine.branches)
            def needs_a_branch(self, name: str) -> None:
                self.run("log", name)


class Opened(BranchRules):
    opening_rules = ("delete_and_recreate",)


class NotOpened(BranchRules):
    pass


@pytest.mark.parametrize(("machine", "opens"), [(Opened, True), (NotOpened, False)])
def test_every_example_may_open_with_its_scenarios(
    environment: MachineEnvironment, machine: type[BranchRules], opens: bool
) -> None:
    """Two steps are the two initializers: a rule that ran did so in the opening."""
    run_machine(
        machine,
        environment,
        hypothesis.settings(
            max_examples=20,
            stateful_step_count=2,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        ),
    )
    rules = environment.coverage[machine.__name__].rules
    assert (rules["delete_and_recreate"] > 0) is opens, rules
