"""Shared fixtures for the library's own tests.

``empty_dsn`` and ``reference_dsn`` give each test a fresh database (empty, or with the
reference target installed); they are the contract other test modules rely on, and
are served by the plugin's per-example pool (``modelcheck_database``), so they work
with the embedded cluster or with MODELCHECK_DATABASE_URL alike. The plugin itself is
loaded through its pytest11 entry point.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from modelcheck import CleanDatabase, EmbeddedServer
from modelcheck._postgres.isolation import DatabasePool
from modelcheck._postgres.server import ExternalServer
from modelcheck.machine import SESSION_SETTINGS, MachineEnvironment, installer_for
from modelcheck.suites.vstore.reference.target import ReferenceTarget

pytest_plugins = ["pytester"]


@pytest.fixture(scope="module")
def reference_environment(
    modelcheck_server: EmbeddedServer | ExternalServer,
) -> Iterator[MachineEnvironment]:
    """An environment for machines built by hand on the reference target, per module."""
    target = ReferenceTarget()
    with DatabasePool(modelcheck_server, installer_for(target), settings=SESSION_SETTINGS) as pool:
        yield MachineEnvironment(target, pool)


@pytest.fixture(scope="session")
def embedded() -> Iterator[EmbeddedServer]:
    """An embedded cluster for tests that need one (not the lifecycle tests)."""
    with EmbeddedServer() as server:
        yield server


@pytest.fixture(scope="session")
def embedded_dsn(embedded: EmbeddedServer) -> str:
    """The superuser DSN of :func:`embedded`, to play an "existing server"."""
    return embedded.dsn


@pytest.fixture
def empty_dsn(modelcheck_database: CleanDatabase) -> str:
    """The DSN of a fresh, empty database, dropped after the test."""
    return modelcheck_database.dsn


@pytest.fixture
def reference_dsn(empty_dsn: str) -> str:
    """The DSN of a fresh database with the reference target installed."""
    from modelcheck.suites.vstore.reference.target import ReferenceTarget

    with psycopg.connect(empty_dsn, autocommit=True) as conn:
        ReferenceTarget().install(conn)
    return empty_dsn
