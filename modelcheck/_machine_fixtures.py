"""pytest fixtures that run differential machines: the target and its database pool."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from modelcheck._config import Config
from modelcheck._isolation import DatabasePool
from modelcheck._server import EmbeddedServer, ExternalServer
from modelcheck._targets import resolve_target
from modelcheck.machine import SESSION_SETTINGS, MachineEnvironment, installer_for


@pytest.fixture(scope="session")
def modelcheck_environment(
    modelcheck_config: Config, modelcheck_server: EmbeddedServer | ExternalServer
) -> Iterator[MachineEnvironment]:
    """The target chosen by ``--modelcheck-target`` and a pool of databases holding it."""
    target = resolve_target(modelcheck_config.target)
    with DatabasePool(modelcheck_server, installer_for(target), settings=SESSION_SETTINGS) as pool:
        environment = MachineEnvironment(target, pool, modelcheck_config.profile)
        yield environment
        for name, coverage in sorted(environment.coverage.items()):
            print(f"\nmodelcheck coverage {name} on {target.name}: {coverage.report()}")
