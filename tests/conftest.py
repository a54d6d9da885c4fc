"""Shared fixtures for the library's own tests.

``empty_dsn`` and ``reference_dsn`` give each test a fresh database (empty, or with the
reference target installed). TEMPORARY implementation on MODELCHECK_DATABASE_URL until
the plugin's database pool lands; the fixture names are the contract.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql


def _admin_dsn() -> str:
    return os.environ.get(
        "MODELCHECK_DATABASE_URL", "postgresql://postgres@/postgres?host=/tmp/devpg"
    )


@pytest.fixture
def empty_dsn() -> Iterator[str]:
    name = f"modelcheck_t_{uuid.uuid4().hex[:12]}"
    admin = _admin_dsn()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    info = psycopg.conninfo.conninfo_to_dict(admin)
    info["dbname"] = name
    try:
        yield psycopg.conninfo.make_conninfo(**info)  # type: ignore[arg-type]
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture
def reference_dsn(empty_dsn: str) -> str:
    from modelcheck._reference.target import ReferenceTarget

    with psycopg.connect(empty_dsn, autocommit=True) as conn:
        ReferenceTarget().install(conn)
    return empty_dsn
