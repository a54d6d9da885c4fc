"""pgGit's adapter: install from a checkout, call its functions, read its tables in one query.

Nothing of pgGit is copied here: ``install`` runs ``sql/install.sql`` of the checkout named
by MODELCHECK_PGGIT_SRC through psql with ON_ERROR_STOP (v0.2.1 needs the repairs listed in
docs/case-studies/pggit.md); every operation is one call of a pgGit function.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, ClassVar, Final

import psycopg
from hypothesis import strategies as st

from modelcheck.errors import InvalidTarget
from modelcheck.spec import Capabilities, OperationError
from modelcheck.sqlfiles import SqlFileError, psql_files
from modelcheck.suites.pggit.spec import (
    ERRORS,
    PGGIT,
    UNSUPPORTED,
    Branch,
    PgGitSpec,
    PgGitState,
    in_order,
)

REQUIRED: Final = (
    "pggit.create_branch(text,text,boolean)",
    "pggit.commit_changes(text,text,text)",
    "pggit.create_commit(text,text,text,uuid[])",
    "pggit.delete_branch_simple(text)",
    "pggit.list_branches(pggit.branch_status,integer)",
    "pggit.checkout_branch(text)",
    "pggit.increment_version(integer,integer,integer,text)",
)
_PREFIXES: Final = {  # pgGit's RAISE texts (inner text for the two wrapping functions)
    "Branch name cannot be": "empty_name",
    "Branch name too long": "name_too_long",
    "Parent branch": "parent_not_found",
    "Branch ": "branch_not_found",
    "Cannot delete protected branch": "protected_branch",
    "Commit message cannot be": "empty_message",
    "Commit message too long": "message_too_long",
    "Invalid increment type": "invalid_increment_type",
}
_WRAPS: Final = ("Failed to create commit on branch ", "Failed to delete branch")
_OBSERVE: Final = b"""
SELECT json_build_object(
  'branches', (SELECT json_agg(json_build_array(b.name, b.id, p.name, b.status,
                 b.head_commit_hash, coalesce(o.n, 0)))
                 FROM pggit.branches b LEFT JOIN pggit.branches p ON p.id = b.parent_branch_id
                 LEFT JOIN (SELECT branch_name, count(*) AS n FROM pggit.objects WHERE is_active
                            GROUP BY branch_name) o ON o.branch_name = b.name),
  'commits', (SELECT coalesce(json_agg(json_build_array(b.name, c.message, c.tree_hash,
                 c.parent_commit_hash, c.hash)), '[]')
                 FROM pggit.commits c JOIN pggit.branches b ON b.id = c.branch_id))::text
"""


def source_dir() -> Path:
    """The pgGit checkout's ``sql/`` directory, or one message naming what is missing."""
    given = os.environ.get("MODELCHECK_PGGIT_SRC")
    fix = "To fix this, set MODELCHECK_PGGIT_SRC=/path/to/pgGit (`nox -s pggit -- --pggit-src DIR`)"
    if not given:
        raise InvalidTarget(f"MODELCHECK_PGGIT_SRC is not set. {fix}.")
    sql = Path(given) / "sql"
    if not (sql / "install.sql").is_file() or not (sql / "000_schema.sql").is_file():
        raise InvalidTarget(f"{given} is not a pgGit checkout (no sql/install.sql). {fix}.")
    return sql


class PgGitTarget:
    name: str = "pggit"
    spec: ClassVar[PgGitSpec] = PGGIT
    capabilities: ClassVar[Capabilities] = Capabilities(unsupported=UNSUPPORTED)

    def install(self, conn: psycopg.Connection[Any]) -> None:
        sql = source_dir()
        try:
            psql_files(conn, [sql / "install.sql"])
        except SqlFileError as exc:
            raise SqlFileError(
                f"pgGit's install stopped: {exc}. pgGit v0.2.1 does not install with "
                "ON_ERROR_STOP as shipped; point MODELCHECK_PGGIT_SRC at a repaired copy "
                "(docs/case-studies/pggit.md lists the 16 repairs)."
            ) from exc
        missing = [f for f in REQUIRED if conn.execute(b"SELECT to_regprocedure(%s)", (f,))
                   .fetchone() == (None,)]  # fmt: skip
        if missing:
            raise InvalidTarget(
                f"pgGit at {sql.parent} installed without {', '.join(missing)}. To fix this, "
                "repair the files that define them (docs/case-studies/pggit.md)."
            )

    def classify(self, error: psycopg.Error) -> OperationError:
        message = error.diag.message_primary or str(error)
        wrapped = message.startswith(_WRAPS)  # commit_changes / delete_branch_simple rewrap
        inner = message.partition(": ")[2] if wrapped else message
        kind = next((k for p, k in _PREFIXES.items() if inner.startswith(p)), None)
        if message.startswith(_WRAPS[0]) and kind not in ("empty_name", "message_too_long"):
            kind = "commit_failed"
        if error.sqlstate == "P0001" and kind is not None:
            return OperationError(kind, ERRORS[kind], message)
        return PGGIT.classify(error)

    async def observe(self, conn: psycopg.AsyncConnection[Any], *, full: bool) -> PgGitState:
        cursor = await conn.execute(_OBSERVE, prepare=True)
        row = await cursor.fetchone()
        assert row is not None
        doc = json.loads(row[0])
        branches = {name: Branch(*rest) for name, *rest in doc["branches"] or []}
        commits = in_order((b, m, t, p) for b, m, t, p, _ in doc["commits"])
        return PgGitState(branches, commits, tuple(c[4] for c in doc["commits"]))

    async def _one(self, conn: psycopg.AsyncConnection[Any], query: bytes, args: Any) -> Any:
        cursor = await conn.execute(query, args)
        row = await cursor.fetchone()
        return None if row is None else row[0] if len(row) == 1 else tuple(row)

    async def create_branch(
        self, conn: psycopg.AsyncConnection[Any], name: str, parent: str
    ) -> Any:
        return await self._one(conn, b"SELECT pggit.create_branch(%s, %s)", (name, parent))

    async def commit(self, conn: psycopg.AsyncConnection[Any], branch: str, message: str) -> Any:
        return await self._one(conn, b"SELECT pggit.commit_changes(%s, %s)", (branch, message))

    async def create_commit(
        self, conn: psycopg.AsyncConnection[Any], branch: str, message: str, sql: str
    ) -> Any:
        query = b"SELECT pggit.create_commit(%s, %s, %s)"
        return await self._one(conn, query, (branch, message, sql))

    async def soft_delete_branch(self, conn: psycopg.AsyncConnection[Any], name: str) -> Any:
        await conn.execute(b"SELECT pggit.delete_branch_simple(%s)", (name,))  # RETURNS void

    async def list_branches(self, conn: psycopg.AsyncConnection[Any]) -> Any:
        cursor = await conn.execute(b"SELECT branch_name, status::text FROM pggit.list_branches()")
        return tuple(sorted(tuple(r) for r in await cursor.fetchall()))

    async def checkout_branch(self, conn: psycopg.AsyncConnection[Any], name: str) -> Any:
        return await self._one(conn, b"SELECT pggit.checkout_branch(%s)", (name,))

    async def increment_version(
        self, conn: psycopg.AsyncConnection[Any], major: int, minor: int, patch: int, how: str
    ) -> Any:
        query = b"SELECT * FROM pggit.increment_version(%s, %s, %s, %s)"
        return await self._one(conn, query, (major, minor, patch, how))


class PgGitPastIdBug(PgGitTarget):
    """Looks past bug 1 (branches_id_seq not advanced past main's explicit id 1,
    000_schema.sql:125): the sequence is moved after install. Only for finding more bugs."""

    name = "pggit-past-id-bug"

    def install(self, conn: psycopg.Connection[Any]) -> None:
        super().install(conn)
        conn.execute(b"SELECT setval('pggit.branches_id_seq', 1)")


class PgGitPastLongNames(PgGitPastIdBug):
    """Also looks past bug 2 (commit functions create branches of > 255 characters)."""

    name = "pggit-past-long-names"
    capabilities = Capabilities(
        unsupported=UNSUPPORTED,
        inputs={"branch_name": st.sampled_from(("main", "dev", "dev/x", "Dev", "", " ", "a b"))},
    )


class PgGitPastKnownBugs(PgGitPastLongNames):
    """Also looks past bug 3 (create_commit: 22P02 for a backslash, 014:29,44)."""

    name = "pggit-past-known-bugs"
    capabilities = Capabilities(
        unsupported=UNSUPPORTED,
        inputs={**PgGitPastLongNames.capabilities.inputs, "message": st.sampled_from(("m", ""))},
    )
