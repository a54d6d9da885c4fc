"""pytest fixtures that run differential machines: the target, its database pool, the
seed of the run and the JSON report."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelcheck._config import Config
from modelcheck._isolation import DatabasePool
from modelcheck._server import EmbeddedServer, ExternalServer
from modelcheck._targets import resolve_target
from modelcheck.machine import SESSION_SETTINGS, MachineEnvironment, installer_for

#: The seed every machine of this pytest run uses (printed in the header).
SEED_KEY = pytest.StashKey[int]()


def choose_seed(given: object) -> int:
    """The ``--hypothesis-seed`` when given (as an int), else a fresh random one."""
    if given is None:
        return random.SystemRandom().randrange(2**32)
    try:
        return int(str(given))
    except ValueError:
        return int.from_bytes(str(given).encode()[:8].ljust(8, b"\0"), "big")


@pytest.fixture(scope="session")
def modelcheck_environment(
    pytestconfig: pytest.Config,
    modelcheck_config: Config,
    modelcheck_server: EmbeddedServer | ExternalServer,
) -> Iterator[MachineEnvironment]:
    """The target chosen by ``--modelcheck-target`` and a pool of databases holding it."""
    target = resolve_target(modelcheck_config.target)
    with DatabasePool(modelcheck_server, installer_for(target), settings=SESSION_SETTINGS) as pool:
        environment = MachineEnvironment(
            target, pool, modelcheck_config.profile, seed=pytestconfig.stash[SEED_KEY]
        )
        yield environment
    report = pytestconfig.getoption("modelcheck_report", None)
    if report:
        Path(report).write_text(json.dumps(environment.report(), indent=2) + "\n")
