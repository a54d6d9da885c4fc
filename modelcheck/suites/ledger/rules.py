"""The ledger's rules: a few owners so accounts collide, amounts around zero; look-ups
prefer accounts that exist, so deposits and transfers go deep."""

from __future__ import annotations

import random
from typing import ClassVar

from hypothesis import strategies as st
from hypothesis.stateful import rule

from modelcheck.interleaving import InterleavedMachine
from modelcheck.machine import DifferentialMachine
from modelcheck.suites.ledger.spec import LEDGER, LedgerModel, LedgerSpec

#: Few owners, so opens, deposits and transfers meet on the same rows; one hostile.
OWNERS = st.sampled_from(("ann", "bob", "cy", "Dee"))


class LedgerRules(DifferentialMachine):
    spec: ClassVar[LedgerSpec] = LEDGER
    model: LedgerModel
    default_target: ClassVar[str] = "modelcheck.suites.ledger.target:LedgerTarget"

    def owner(self, data: st.DataObject, label: str = "owner") -> str:
        """An existing account mostly, any owner sometimes."""
        live = sorted(self.model.balances)
        pick = st.one_of(st.sampled_from(live), OWNERS) if live else OWNERS
        return data.draw(pick, label=label)

    @rule(owner=OWNERS)
    def open_account(self, owner: str) -> None:
        self.run("open_account", owner)

    @rule(data=st.data(), amount=st.integers(-1, 120))
    def deposit(self, data: st.DataObject, amount: int) -> None:
        self.run("deposit", self.owner(data), amount)

    @rule(data=st.data(), amount=st.integers(-1, 40))
    def transfer(self, data: st.DataObject, amount: int) -> None:
        live = sorted(self.model.balances)
        if len(live) >= 2 and data.draw(st.booleans(), label="between accounts"):
            source = data.draw(st.sampled_from(live), label="source")
            to = data.draw(st.sampled_from([o for o in live if o != source]), label="to")
        else:
            source, to = self.owner(data, "source"), self.owner(data, "to")
        self.run("transfer", source, to, amount)

    @rule()
    def fund(self) -> None:
        """Open ann and bob and give each 100, so transfers between them succeed (and, on
        several connections, contend for the same rows)."""
        for owner in ("ann", "bob"):
            if owner not in self.model.balances:
                self.run("open_account", owner)
            self.run("deposit", owner, 100)

    @rule(data=st.data())
    def balance(self, data: st.DataObject) -> None:
        self.run("balance", self.owner(data))

    @rule(data=st.data())
    def close_account(self, data: st.DataObject) -> None:
        self.run("close_account", self.owner(data))


class LedgerMachine(LedgerRules):
    """Accounts, deposits and transfers, one connection."""


class LedgerConcurrencyMachine(InterleavedMachine, LedgerRules):
    """The same rules on 2-4 interleaved connections, against the serial-order oracle."""

    @rule(data=st.data(), amount=st.integers(1, 30))
    def contend(self, data: st.DataObject, amount: int) -> None:
        """From another connection, move money from an account an open transaction
        locked: the transfer must wait for that transaction."""
        found = self.contended(self.model.balances)
        if found is None:
            return self.transfer(data, amount)
        self.current, locked = found
        source = data.draw(st.sampled_from(locked), label="source")
        others = [o for o in sorted(self.model.balances) if o != source]
        if others:
            self.run("transfer", source, data.draw(st.sampled_from(others), label="to"), amount)
        return None


def stress_call(rng: random.Random) -> tuple[str, tuple[object, ...]]:
    """One call of a stress worker: mostly deposits and transfers between two accounts
    everyone shares, so workers contend for the same rows."""
    owner, other = rng.sample(["ann", "bob"], 2)
    kind = rng.choices(["open", "deposit", "transfer", "balance"], [1, 3, 6, 1])[0]
    if kind == "open":
        return "open_account", (owner,)
    if kind == "deposit":
        return "deposit", (owner, rng.randint(1, 50))
    if kind == "transfer":
        return "transfer", (owner, other, rng.randint(1, 30))
    return "balance", (owner,)
