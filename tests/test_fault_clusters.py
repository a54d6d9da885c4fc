"""Faults that need a cluster of their own: a server restart and connection exhaustion.

With fsync off, only a clean (fast) shutdown is claimed to keep committed work; a crash
is not (see docs/chaos.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from modelcheck._postgres.isolation import DatabasePool
from modelcheck._postgres.server import EmbeddedServer
from modelcheck.errors import ServerError
from modelcheck.machine import SESSION_SETTINGS, MachineEnvironment, installer_for
from modelcheck.suites.vstore.faults import FaultRules
from modelcheck.suites.vstore.reference.target import ReferenceTarget
from modelcheck.suites.vstore.rules import BranchRules, CommitRules, MigrationRules

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


class Machine(FaultRules, MigrationRules, CommitRules, BranchRules):
    pass


def _environment(server: EmbeddedServer) -> DatabasePool:
    return DatabasePool(
        server, installer_for(ReferenceTarget()), ahead=0, settings=SESSION_SETTINGS
    )


def _take_every_slot(dsn: str, hogs: list[psycopg.Connection[Any]]) -> None:
    while len(hogs) < 20:  # bounded: max_connections is 10
        try:
            hogs.append(psycopg.connect(dsn))
        except psycopg.OperationalError:
            return
    raise AssertionError("max_connections was never reached")


@pytest.fixture
def small_server() -> Iterator[EmbeddedServer]:
    settings = {"max_connections": "10", "superuser_reserved_connections": "0"}
    with EmbeddedServer(settings=settings) as server:
        yield server


def test_restart_keeps_committed_work_and_drops_open_transactions() -> None:
    with EmbeddedServer() as server, _environment(server) as pool:
        machine = Machine(MachineEnvironment(ReferenceTarget(), pool))
        try:
            machine.open_connections(2)
            machine.current = 0
            machine.run("create_branch", "kept", "main")
            machine.run("commit", "kept", "committed before the restart")
            machine.current = 1
            machine.begin("read committed")
            machine.run("commit", "main", "open when the server stopped")
            server.restart()
            machine.reconnect_all()
            machine.check_state()
            assert "kept" in machine.model.branches
            assert len(machine.model.log("main").values) == 1, "the open commit is gone"
            machine.current = 0
            machine.run("commit", "main", "after the restart")
            assert len(machine.model.log("main").values) == 2
        finally:
            machine.teardown()


def test_exhausted_connections_fail_clearly_and_lose_nothing(
    small_server: EmbeddedServer,
) -> None:
    with _environment(small_server) as pool:
        machine = Machine(MachineEnvironment(ReferenceTarget(), pool))
        hogs: list[psycopg.Connection[Any]] = []
        try:
            machine.open_connections(2)
            machine.current = 0
            machine.run("commit", "main", "before")
            _take_every_slot(machine.database.dsn, hogs)
            with pytest.raises(ServerError, match="53300"):
                machine.connect()  # the machine's own path names the problem and the fix
            for hog in hogs:
                hog.close()
            hogs.clear()
            extra = machine.connect()
            assert not extra.closed
            machine.run("commit", "main", "after")
            machine.check_state()
            assert len(machine.model.log("main").values) == 3, "nothing was lost"
        finally:
            for hog in hogs:
                hog.close()
            machine.teardown()
