"""A second, small suite: a ledger of accounts and transfers (the seam's worked example).

The model keeps balances and transfers; what it cannot predict is bound by laws: an
account's id (FRESH, IMMUTABLE, MONOTONIC) and a transfer's digest (a function of its
content, INJECTIVE: another transfer never shares it). docs/own-suite.md walks through it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import ClassVar, Final

from attrs import define, field, frozen

from modelcheck.spec import (
    CONTENT_HASH,
    ENTITY_KEY,
    Bindings,
    Opaque,
    Operation,
    OperationError,
    Spec,
    operation_table,
)

OWNER: Final = re.compile(r"[a-z][a-z0-9]{0,15}")
ERRORS: Final = {  # kind -> SQLSTATE: the ledger raises plain P0001 with a message
    "bad_owner": "P0001",
    "owner_exists": "P0001",
    "no_account": "P0001",
    "bad_amount": "P0001",
    "insufficient_funds": "P0001",
    "account_in_use": "P0001",
}
Transfer = tuple[str, str, int]


def _error(kind: str) -> OperationError:
    return OperationError(kind, ERRORS[kind])


@frozen
class Account:
    id: int | None
    balance: int


@frozen
class LedgerState:
    """Accounts by owner; transfers as a sorted multiset (commit order is not id order)."""

    accounts: Mapping[str, Account]
    transfers: tuple[tuple[str, str, int, str | None], ...]


@define
class LedgerModel:
    balances: dict[str, int] = field(factory=dict)
    transfers: list[Transfer] = field(factory=list)
    bindings: Bindings = field(factory=Bindings)

    def _account(self, owner: str) -> int:
        if owner not in self.balances:
            raise _error("no_account")
        return self.balances[owner]

    def open_account(self, owner: str) -> None:
        if not OWNER.fullmatch(owner):
            raise _error("bad_owner")
        if owner in self.balances:
            raise _error("owner_exists")
        self.balances[owner] = 0

    def deposit(self, owner: str, amount: int) -> int:
        if amount <= 0:
            raise _error("bad_amount")
        self.balances[owner] = self._account(owner) + amount
        return self.balances[owner]

    def transfer(self, source: str, to: str, amount: int) -> None:
        if amount <= 0 or source == to:
            raise _error("bad_amount")
        for owner in sorted((source, to)):  # the order the ledger locks (and fails) in
            self._account(owner)
        if self.balances[source] < amount:
            raise _error("insufficient_funds")
        self.balances[source] -= amount
        self.balances[to] += amount
        self.transfers.append((source, to, amount))

    def balance(self, owner: str) -> int:
        return self._account(owner)

    def close_account(self, owner: str) -> None:
        if self._account(owner) != 0:
            raise _error("insufficient_funds")
        if any(owner in (source, to) for source, to, _ in self.transfers):
            raise _error("account_in_use")  # its transfers keep referring to it
        del self.balances[owner]
        self.bindings.retire("account.id", owner)  # a reopened account gets a new id


def _opened(result: object, args: tuple[object, ...]) -> Iterable[Opaque]:
    return [Opaque("account.id", args[0], result, ENTITY_KEY)]


def _transferred(result: object, args: tuple[object, ...]) -> Iterable[Opaque]:
    return [Opaque("transfer.digest", tuple(args), result, CONTENT_HASH)]


def _opaque_result(expected: object, actual: object, args: tuple[object, ...]) -> Iterable[str]:
    return () if actual is not None else ["result: the target returned nothing"]


class LedgerSpec(Spec[LedgerModel, LedgerState]):
    name: ClassVar[str] = "ledger"
    operations = operation_table(
        Operation("open_account", compare=_opaque_result, opaque=_opened),
        Operation("deposit", locks=lambda args: [str(args[0])]),
        Operation(
            "transfer",
            compare=_opaque_result,
            opaque=_transferred,
            locks=lambda args: [str(args[0]), str(args[1])],
        ),
        Operation("balance", reads_only=True),
        Operation("close_account", locks=lambda args: [str(args[0])]),
    )
    error_kinds = ERRORS

    def initial_model(self) -> LedgerModel:
        return LedgerModel()

    def expected(self, model: LedgerModel, *, full: bool) -> LedgerState:
        bound = model.bindings
        accounts = {o: Account(bound.get("account.id", o), b) for o, b in model.balances.items()}
        transfers = sorted((*t, bound.get("transfer.digest", t)) for t in model.transfers)
        return LedgerState(accounts, tuple(transfers))

    def state_opaque(self, model: LedgerModel, state: LedgerState) -> Iterable[Opaque]:
        for owner, account in state.accounts.items():
            if owner in model.balances:
                yield Opaque("account.id", owner, account.id, ENTITY_KEY)
        made = set(model.transfers)
        for source, to, amount, digest in state.transfers:
            if (source, to, amount) in made:
                yield Opaque("transfer.digest", (source, to, amount), digest, CONTENT_HASH)


LEDGER: Final = LedgerSpec()
