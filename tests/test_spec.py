"""The seam on its own: laws of opaque values, projections, definition errors."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from attrs import frozen

from modelcheck import (
    CONTENT_HASH,
    ENTITY_KEY,
    LOOKUP,
    Bindings,
    Capabilities,
    InvalidDefinition,
    Opaque,
    Operation,
    operation_table,
)
from modelcheck._projection import NOT_COMPARED, project
from modelcheck.machine import machine_spec
from modelcheck.suites.ledger.spec import LEDGER
from modelcheck.suites.ledger.target import LedgerTarget
from modelcheck.target import check_target


def learn(b: Bindings, kind: str, key: Any, value: Any, laws: Any, seq: bool = True) -> str | None:
    return b.learn(Opaque(kind, key, value, laws), sequential=seq)


def test_an_entity_key_is_fresh_immutable_and_monotonic() -> None:
    b = Bindings()
    assert learn(b, "pk", "a", 1, ENTITY_KEY) is None
    assert learn(b, "pk", "a", 1, ENTITY_KEY) is None  # seen again, same value
    assert "changed from 1 to 2" in str(learn(b, "pk", "a", 2, ENTITY_KEY))
    assert "already belongs to 'a'" in str(learn(b, "pk", "b", 1, ENTITY_KEY))
    assert learn(b, "pk", "c", 5, ENTITY_KEY) is None
    assert "not above the latest 5" in str(learn(b, "pk", "d", 3, ENTITY_KEY))
    assert learn(b, "pk", "d", 3, ENTITY_KEY, seq=False) is None  # concurrency: no order
    assert b.get("pk", "c") == 5
    assert b.key_of("pk", 5) == "c"


def test_a_fresh_value_never_comes_back_after_a_rollback() -> None:
    b = Bindings()
    b.spend("pk", 7)
    assert "rolled-back transaction" in str(learn(b, "pk", "a", 7, ENTITY_KEY))
    assert learn(b, "pk", "a", 7, CONTENT_HASH) is None  # no FRESH law: allowed


def test_a_content_hash_is_a_function_of_content_and_injective() -> None:
    b = Bindings()
    assert learn(b, "h", ("x", 1), "d1", CONTENT_HASH) is None
    assert learn(b, "h", ("x", 1), "d1", CONTENT_HASH) is None
    assert "same content" in str(learn(b, "h", ("x", 1), "d2", CONTENT_HASH))
    assert "already belongs to ('x', 1)" in str(learn(b, "h", ("x", 2), "d1", CONTENT_HASH))


def test_a_lookup_must_agree_with_what_was_bound() -> None:
    b = Bindings()
    assert learn(b, "pk", "a", 1, ENTITY_KEY) is None
    assert learn(b, "pk", "a", 1, LOOKUP) is None
    assert "changed" in str(learn(b, "pk", "a", 9, LOOKUP))
    assert learn(b, "pk", "z", None, ENTITY_KEY) is None  # nothing observed: nothing bound
    assert b.get("pk", "z") is None


def test_clones_and_absorb_are_independent_copies() -> None:
    b = Bindings()
    learn(b, "pk", "a", 1, ENTITY_KEY)
    c = b.clone()
    learn(c, "pk", "b", 2, ENTITY_KEY)
    assert b.get("pk", "b") is None
    b.absorb(c)
    assert b.get("pk", "b") == 2
    assert b.latest["pk"] == 2


@frozen
class Row:
    id: int
    version: str


@frozen
class State:
    rows: dict[str, Row]
    extra: str


def test_projection_hides_the_same_fields_on_both_sides() -> None:
    model = State({"a": Row(1, "1.0.0")}, "x")
    db = State({"a": Row(1, "unsupported")}, "x")
    assert model != db
    assert project(model, ["rows.*.version"]) == project(db, ["rows.*.version"])
    assert project(model, ["extra"]).extra is NOT_COMPARED
    assert repr(NOT_COMPARED) == "<not compared>"
    with pytest.raises(ValueError, match="no field 'nope'"):
        project(model, ["rows.*.nope"])


def test_an_operation_declared_twice_is_a_definition_error() -> None:
    with pytest.raises(InvalidDefinition, match="'x' is declared twice"):
        operation_table(Operation("x"), Operation("x"))


def test_an_unknown_operation_names_the_known_ones() -> None:
    with pytest.raises(InvalidDefinition, match=r"no operation 'nope' \(it has: balance"):
        LEDGER.operation("nope")


class HalfLedger(LedgerTarget):
    capabilities = Capabilities(unsupported=frozenset({"close_account", "balance"}))


class NoDeposit:
    name = "no-deposit"

    def install(self, conn: Any) -> None: ...

    async def open_account(self, conn: Any, owner: str) -> None: ...


def test_a_target_lacking_an_operation_fails_before_any_example() -> None:
    check_target(LEDGER, LedgerTarget())
    check_target(LEDGER, HalfLedger())
    with pytest.raises(InvalidDefinition, match="no coroutine for deposit, transfer, balance"):
        check_target(LEDGER, NoDeposit())
    bad = Capabilities(unsupported=frozenset({"fly"}))
    with pytest.raises(InvalidDefinition, match="unsupported operations fly"):
        check_target(LEDGER, type("T", (LedgerTarget,), {"capabilities": bad})())


def test_a_machine_without_a_spec_is_rejected_at_collection() -> None:
    from modelcheck import DifferentialMachine

    class Bare(DifferentialMachine):
        pass

    with pytest.raises(InvalidDefinition, match="Bare names no spec"):
        Bare.pytest_test()
    assert machine_spec(type("M", (Bare,), {"spec": LEDGER})) is LEDGER


def test_a_rule_running_an_unknown_operation_is_rejected_at_collection() -> None:
    from hypothesis.stateful import rule

    from modelcheck.suites.ledger.rules import LedgerRules

    class Typo(LedgerRules):
        @rule()
        def withdraw(self) -> None:
            self.run("withdraw", "ann", 5)

    with pytest.raises(InvalidDefinition, match="Typo runs operation 'withdraw'"):
        Typo.pytest_test()
    LedgerRules.pytest_test()  # the shipped rules name only known operations


def test_a_result_must_carry_its_opaque_values() -> None:
    b = Bindings()
    missing = Opaque("pk", "a", None, ENTITY_KEY)
    assert b.learn(missing, sequential=True) is None  # a state may not show it yet
    assert "carries no pk for 'a'" in str(b.learn(missing, sequential=True, required=True))


def test_a_failed_learn_changes_nothing() -> None:
    b = Bindings()
    learn(b, "pk", "a", 5, ENTITY_KEY)
    before = b.clone()
    assert learn(b, "pk", "b", 3, ENTITY_KEY) is not None  # below the latest
    assert b == before


def test_a_retired_key_is_forgotten_and_its_value_never_fresh_again() -> None:
    b = Bindings()
    learn(b, "pk", "a", 1, ENTITY_KEY)
    b.retire("pk", "a")
    assert b.get("pk", "a") is None
    assert "rolled-back" in str(learn(b, "pk", "a", 1, ENTITY_KEY))
    assert learn(b, "pk", "a", 2, ENTITY_KEY) is None


def test_a_client_side_driver_error_is_never_a_legal_abort() -> None:
    refused = LEDGER.classify(psycopg.ProgrammingError("cannot adapt type"))
    assert refused.kind == "client_error"
    assert not LEDGER.plausible(refused)
    broken = LEDGER.classify(psycopg.OperationalError("server closed the connection"))
    assert broken.outcome == ("08006", "connection_failure")
    assert LEDGER.plausible(broken)


def test_a_fast_forward_returns_an_existing_commit_so_its_keys_are_a_lookup() -> None:
    # Were they FRESH, a rolled-back fast-forward would spend a live commit's keys, and
    # the oracle would then reject the commit that made them (a false alarm).
    from uuid import UUID

    from modelcheck import Law, MergeResult, TrinityId
    from modelcheck.suites.vstore.spec import VSTORE

    keys = TrinityId(5, UUID(int=5), "c5")
    merge = VSTORE.operation("merge")
    forward = list(merge.opaque(MergeResult("fast_forward", keys, "0.1.0"), ("a", "b")))
    made = list(merge.opaque(MergeResult("merge", keys, "0.1.0"), ("a", "b")))
    assert forward
    assert all(Law.FRESH not in o.laws for o in forward)
    assert all(Law.FRESH in o.laws for o in made)
