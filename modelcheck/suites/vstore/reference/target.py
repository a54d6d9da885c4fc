"""The reference target: docs/domain.md implemented in PL/pgSQL, driven over psycopg.

Every operation is one statement, ``SELECT * FROM vstore.<op>(...)``, so it is atomic
and the concurrency machines can send it without waiting. Mutants subclass
:class:`ReferenceTarget` and replace a single SQL function through ``extra_sql``::

    class MissingLock(ReferenceTarget):
        name = "missing_lock"
        extra_sql = ("CREATE OR REPLACE FUNCTION vstore.lock_active_branch ...",)
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from importlib import resources
from typing import Any, ClassVar, LiteralString
from uuid import UUID

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from modelcheck.spec import Capabilities
from modelcheck.suites.vstore.domain.errors import DomainError
from modelcheck.suites.vstore.results import (
    CommitResult,
    Drift,
    EntityKind,
    MergeResult,
    MigrationResult,
    Operation,
    TrinityId,
    contains_nul,
    domain_error_from,
)
from modelcheck.suites.vstore.spec import VSTORE, VersionedStoreSpec

_SQL_PACKAGE = "modelcheck.suites.vstore.reference"
_SQL_DIR = "sql"


def _plain(value: Any) -> Any:
    """Operations as plain JSON values (Mappings become dicts, tuples lists)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _literal(value: Any) -> sql.Composable:
    """A value as the literal the target binds it as (operations travel as jsonb)."""
    if isinstance(value, (list, tuple, Mapping)):
        return sql.SQL("{}::jsonb").format(sql.Literal(json.dumps(value, default=str)))
    if isinstance(value, UUID):
        return sql.Literal(str(value))
    return sql.Literal(value)


def _trinity(pk: int, id: UUID, identifier: str) -> TrinityId:
    return TrinityId(pk, id, identifier)


class ReferenceTarget:
    """The default target: the store as shipped in ``modelcheck/_reference/sql``."""

    name: str = "reference"
    spec: ClassVar[VersionedStoreSpec] = VSTORE
    #: Every operation is one PL/pgSQL call: the same inside a caller's transaction.
    capabilities: ClassVar[Capabilities] = Capabilities(transaction_safe=True)
    store_schemas: tuple[str, ...] = ("vstore",)
    #: The package's SQL files to run at install, in this order; ``None`` means every
    #: ``sql/*.sql`` in name order.
    sql_files: ClassVar[tuple[str, ...] | None] = None
    #: Scripts run after the files in the same transaction: a mutant puts its
    #: ``CREATE OR REPLACE FUNCTION vstore.<name> ...`` here.
    extra_sql: ClassVar[tuple[str, ...]] = ()

    # -- install -----------------------------------------------------------------------

    def sql_scripts(self) -> list[tuple[str, str]]:
        """``(name, text)`` of every script :meth:`install` runs, in order."""
        directory = resources.files(_SQL_PACKAGE).joinpath(_SQL_DIR)
        names = self.sql_files
        if names is None:
            names = tuple(sorted(p.name for p in directory.iterdir() if p.name.endswith(".sql")))
        scripts = [(n, directory.joinpath(n).read_text(encoding="utf-8")) for n in names]
        scripts += [(f"extra_sql[{i}]", text) for i, text in enumerate(self.extra_sql)]
        return scripts

    def sql_for(self, operation: str, args: Sequence[Any]) -> str | None:
        """The statement an operation sends, for traces: shown to people, never executed
        (the target sends it with bound parameters)."""
        shown: tuple[Any, ...] = tuple(args)
        if operation == "resolve" and len(shown) == 2:
            key = shown[1]
            kind = "pk" if isinstance(key, int) else "id" if isinstance(key, UUID) else "identifier"
            shown = (shown[0], str(key), kind)
        if contains_nul(list(shown)):
            return None  # a NUL value never reaches the server: nothing was sent
        statement = sql.SQL("SELECT * FROM vstore.{}({})").format(
            sql.Identifier(operation), sql.SQL(", ").join(_literal(a) for a in shown)
        )
        return statement.as_string(None)

    def install(self, conn: psycopg.Connection[Any]) -> None:
        """Create the store (schema ``vstore``, branch ``main``) in one transaction."""
        with conn.transaction():
            for _name, text in self.sql_scripts():
                # Bytes: the scripts are run as written (no placeholders), several
                # statements per script, through the simple query protocol.
                conn.execute(text.encode("utf-8"))

    # -- calls -------------------------------------------------------------------------

    async def _call(
        self,
        conn: psycopg.AsyncConnection[Any],
        query: LiteralString,
        params: Sequence[Any],
        raw: Sequence[Any] = (),
    ) -> list[tuple[Any, ...]]:
        """Send one statement; NUL never reaches the server, errors become DomainError."""
        if contains_nul(list(params)) or contains_nul(list(raw)):
            error = DomainError("nul_in_text", message="a text argument contains NUL")
            if conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS:
                # Like any failed statement, abort the open transaction (server-side).
                try:
                    await conn.execute(
                        "SELECT vstore.raise_domain_error(%s, %s, %s)",
                        (error.kind, error.sqlstate, error.message),
                    )
                except psycopg.Error as raised:
                    raise domain_error_from(raised) from raised
            raise error
        try:
            cursor = await conn.execute(query, params)
            return await cursor.fetchall()
        except psycopg.Error as error:
            raise domain_error_from(error) from error

    async def create_branch(
        self, conn: psycopg.AsyncConnection[Any], name: str, from_branch: str
    ) -> TrinityId:
        rows = await self._call(
            conn, "SELECT * FROM vstore.create_branch(%s, %s)", (name, from_branch)
        )
        return _trinity(*rows[0])

    async def delete_branch(self, conn: psycopg.AsyncConnection[Any], name: str) -> None:
        await self._call(conn, "SELECT * FROM vstore.delete_branch(%s)", (name,))

    async def commit(
        self, conn: psycopg.AsyncConnection[Any], branch: str, message: str
    ) -> CommitResult:
        rows = await self._call(conn, "SELECT * FROM vstore.commit(%s, %s)", (branch, message))
        pk, id, identifier, version, schema_hash = rows[0]
        return CommitResult(_trinity(pk, id, identifier), version, schema_hash)

    async def apply_migration(
        self,
        conn: psycopg.AsyncConnection[Any],
        branch: str,
        identifier: str,
        operations: Sequence[Operation],
    ) -> MigrationResult:
        ops = _plain(operations)
        rows = await self._call(
            conn,
            "SELECT * FROM vstore.apply_migration(%s, %s, %s)",
            (branch, identifier, Jsonb(ops)),
            raw=(ops,),
        )
        pk, id, ident, checksum = rows[0]
        return MigrationResult(_trinity(pk, id, ident), checksum)

    async def rollback_migration(self, conn: psycopg.AsyncConnection[Any], identifier: str) -> None:
        await self._call(conn, "SELECT * FROM vstore.rollback_migration(%s)", (identifier,))

    async def merge(
        self, conn: psycopg.AsyncConnection[Any], source: str, target: str
    ) -> MergeResult:
        rows = await self._call(conn, "SELECT * FROM vstore.merge(%s, %s)", (source, target))
        kind, pk, id, identifier, version = rows[0]
        commit = None if pk is None else _trinity(pk, id, identifier)
        return MergeResult(kind, commit, version)

    async def log(self, conn: psycopg.AsyncConnection[Any], branch: str) -> tuple[str, ...]:
        rows = await self._call(conn, "SELECT * FROM vstore.log(%s)", (branch,))
        return tuple(rows[0][0])

    async def resolve(
        self, conn: psycopg.AsyncConnection[Any], kind: EntityKind, key: int | UUID | str
    ) -> TrinityId:
        # The key's Python type says which key it is; SQL gets it as text plus that hint.
        if isinstance(key, bool):
            raise TypeError(f"resolve key must be int, UUID or str, not {key!r}")
        key_kind = "pk" if isinstance(key, int) else "id" if isinstance(key, UUID) else "identifier"
        rows = await self._call(
            conn, "SELECT * FROM vstore.resolve(%s, %s, %s)", (kind, str(key), key_kind)
        )
        return _trinity(*rows[0])

    async def verify(self, conn: psycopg.AsyncConnection[Any]) -> tuple[Drift, ...]:
        rows = await self._call(conn, "SELECT * FROM vstore.verify()", ())
        return tuple(Drift(branch, tuple(objects)) for branch, objects in rows)
