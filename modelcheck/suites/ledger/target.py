"""The ledger in PL/pgSQL (``ledger.sql``): its adapter, its observer, its classifier.

It keeps its own table layout, reads it back in one query, classifies its ``P0001``
errors by their message prefix and declares ``close_account`` unsupported (it has no
such function). Its mutants are the same SQL with one change each.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar, Final

import psycopg

from modelcheck.spec import Capabilities, OperationError
from modelcheck.sqlfiles import execute_files
from modelcheck.suites.ledger.spec import ERRORS, LEDGER, Account, LedgerSpec, LedgerState

_PREFIXES: Final = {
    "bad owner": "bad_owner",
    "owner exists": "owner_exists",
    "no account": "no_account",
    "bad amount": "bad_amount",
    "insufficient funds": "insufficient_funds",
}
_OBSERVE: Final = b"""
SELECT json_build_object(
  'accounts', (SELECT coalesce(json_agg(json_build_array(owner, id, balance)), '[]')
                 FROM ledger.accounts),
  'transfers', (SELECT coalesce(json_agg(json_build_array(f.owner, t.owner, x.amount, x.digest)),
                                '[]')
                  FROM ledger.transfers x
                  JOIN ledger.accounts f ON f.id = x.from_id
                  JOIN ledger.accounts t ON t.id = x.to_id))::text
"""


class LedgerTarget:
    name: str = "ledger"
    spec: ClassVar[LedgerSpec] = LEDGER
    capabilities: ClassVar[Capabilities] = Capabilities(
        unsupported=frozenset({"close_account"}), transaction_safe=True
    )
    #: ``(old, new)`` text replacements applied to ledger.sql: how a mutant differs.
    changes: ClassVar[tuple[tuple[str, str], ...]] = ()

    def install(self, conn: psycopg.Connection[Any]) -> None:
        source = Path(str(resources.files("modelcheck.suites.ledger").joinpath("ledger.sql")))
        text = source.read_text()
        for old, new in self.changes:
            assert text.count(old) == 1, f"{type(self).__name__}: {old!r} must occur once"
            text = text.replace(old, new)
        execute_files(conn, [(str(source), text)])

    def classify(self, error: psycopg.Error) -> OperationError:
        message = error.diag.message_primary or str(error)
        kind = _PREFIXES.get(message.partition(":")[0])
        if error.sqlstate == "P0001" and kind is not None:
            return OperationError(kind, ERRORS[kind], message)
        return LEDGER.classify(error)

    async def observe(self, conn: psycopg.AsyncConnection[Any], *, full: bool) -> LedgerState:
        cursor = await conn.execute(_OBSERVE, prepare=True)
        row = await cursor.fetchone()
        assert row is not None
        doc = json.loads(row[0])
        accounts = {owner: Account(id, balance) for owner, id, balance in doc["accounts"]}
        transfers = sorted(tuple(t) for t in doc["transfers"])
        return LedgerState(accounts, tuple(transfers))

    async def _call(self, conn: psycopg.AsyncConnection[Any], query: bytes, args: Any) -> Any:
        cursor = await conn.execute(query, args)
        row = await cursor.fetchone()
        return None if row is None else row[0]

    async def open_account(self, conn: psycopg.AsyncConnection[Any], owner: str) -> Any:
        return await self._call(conn, b"SELECT ledger.open(%s)", (owner,))

    async def deposit(self, conn: psycopg.AsyncConnection[Any], owner: str, amount: int) -> Any:
        return await self._call(conn, b"SELECT ledger.deposit(%s, %s)", (owner, amount))

    async def transfer(
        self, conn: psycopg.AsyncConnection[Any], source: str, to: str, amount: int
    ) -> Any:
        return await self._call(conn, b"SELECT ledger.transfer(%s, %s, %s)", (source, to, amount))

    async def balance(self, conn: psycopg.AsyncConnection[Any], owner: str) -> Any:
        return await self._call(conn, b"SELECT ledger.balance(%s)", (owner,))


class TransferWithoutLock(LedgerTarget):
    """Reads both balances without FOR UPDATE, then writes absolute values: a lost update."""

    name = "ledger-transfer-no-lock"
    changes = (
        ("src := ledger.account(p_from, true); dst := ledger.account(p_to, true);",
         "src := ledger.account(p_from, false); dst := ledger.account(p_to, false);"),
        ("dst := ledger.account(p_to, true); src := ledger.account(p_from, true);",
         "dst := ledger.account(p_to, false); src := ledger.account(p_from, false);"),
        ("SET balance = balance - p_amount WHERE id = src.id",
         "SET balance = src.balance - p_amount WHERE id = src.id"),
    )  # fmt: skip


class IdFromMaxPlusOne(LedgerTarget):
    """Account ids from max(id)+1: an id a rolled-back transaction returned comes back."""

    name = "ledger-id-max-plus-one"
    changes = (
        ("INSERT INTO ledger.accounts (owner) VALUES (p_owner)",
         "INSERT INTO ledger.accounts (id, owner) OVERRIDING SYSTEM VALUE VALUES "
         "((SELECT coalesce(max(id), 0) + 1 FROM ledger.accounts), p_owner)"),
    )  # fmt: skip


class DigestIgnoresAmount(LedgerTarget):
    """The transfer digest leaves the amount out: two different transfers collide."""

    name = "ledger-digest-ignores-amount"
    changes = (("format('%s>%s:%s', p_from, p_to, p_amount)", "format('%s>%s', p_from, p_to)"),)


MUTANTS: Final = (TransferWithoutLock, IdFromMaxPlusOne, DigestIgnoresAmount)
