"""A fresh database for the canonical-form tests.

Uses the ``empty_dsn`` fixture (the contract) when conftest provides it, else creates
a throwaway database on MODELCHECK_DATABASE_URL (the dev cluster by default) so these
tests do not depend on which fixture layer is currently installed.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql


def _admin_dsn() -> str:
    default = "postgresql://postgres@/postgres?host=/tmp/devpg"
    return os.environ.get("MODELCHECK_DATABASE_URL", default)


def fresh_dsn(request: pytest.FixtureRequest) -> Iterator[str]:
    """Body of a ``dsn`` fixture: ``yield from fresh_dsn(request)``."""
    try:
        yield request.getfixturevalue("empty_dsn")
        return
    except pytest.FixtureLookupError:
        pass
    name = f"modelcheck_t_{uuid.uuid4().hex[:12]}"
    admin = _admin_dsn()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield psycopg.conninfo.make_conninfo(admin, dbname=name)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
