"""pytest fixtures that run differential machines: the target, its database pool, the
seed of the run and the JSON report."""

from __future__ import annotations

import contextlib
import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modelcheck import _summary
from modelcheck._config import Config
from modelcheck._postgres.isolation import DatabasePool
from modelcheck._postgres.server import EmbeddedServer, ExternalServer
from modelcheck._progress import Progress
from modelcheck._targets import DEFAULT, resolve_target, spec_of
from modelcheck.machine import (
    SESSION_SETTINGS,
    DifferentialMachine,
    MachineEnvironment,
    installer_for,
    machine_spec,
)
from modelcheck.spec import InvalidDefinition

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


class Environments:
    """One environment per target a run needs: the configured one, and the default target
    of any machine whose spec the configured target does not implement."""

    def __init__(
        self,
        config: Config,
        server: EmbeddedServer | ExternalServer,
        seed: int,
        progress: Progress | None = None,
    ) -> None:
        self.progress = progress or Progress()
        self.config = config
        self.server = server
        self.seed = seed
        self.by_target: dict[str, MachineEnvironment] = {}
        self._stack = contextlib.ExitStack()

    def get(self, name: str | None) -> MachineEnvironment:
        key = name or DEFAULT
        if key not in self.by_target:
            target = resolve_target(key)
            installer = installer_for(target)
            pool = self._stack.enter_context(
                DatabasePool(self.server, installer, settings=SESSION_SETTINGS)
            )
            self.by_target[key] = MachineEnvironment(
                target, pool, self.config.profile, self.seed, progress=self.progress
            )
        return self.by_target[key]

    def for_machine(self, machine: type[DifferentialMachine]) -> MachineEnvironment:
        spec = machine_spec(machine)
        configured = self.get(self.config.target)
        if spec_of(configured.target).name == spec.name:
            return configured
        default: str | None = getattr(machine, "default_target", None)
        if default is None:
            raise InvalidDefinition(
                f"{machine.__qualname__} checks spec {spec.name!r}, but the configured target "
                f"{configured.target.name!r} implements {spec_of(configured.target).name!r}. "
                "To fix this, either: give --modelcheck-target a target of that spec, or set "
                "`default_target = 'package.module:Target'` on the machine."
            )
        return self.get(default)

    def report(self) -> dict[str, Any]:
        """The JSON report: the configured target's, with every other target's machines."""
        main = self.get(self.config.target).report()
        for environment in self.by_target.values():
            main["machines"].update(environment.results)
        return main

    def summary(self) -> dict[str, list[str]]:
        """Each machine run's coverage table, headed by its target and verdict."""
        lines: dict[str, list[str]] = {}
        for environment in self.by_target.values():
            for name, coverage in environment.coverage.items():
                outcome = environment.results.get(name, {}).get("outcome", "not run")
                head = f"{name} on {environment.target.name} ({outcome}): "
                lines[name] = (head + coverage.report()).splitlines()
        return lines

    def close(self) -> None:
        self._stack.close()


def pytest_progress(config: pytest.Config) -> Progress:
    """Progress through pytest's terminal, past output capturing: a live line on a
    terminal, a plain line every 30 s in a log; nothing from an xdist worker."""
    reporter: Any = config.pluginmanager.get_plugin("terminalreporter")
    capture: Any = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None or hasattr(config, "workeroutput"):
        return Progress()

    def write(text: str, live: bool) -> None:
        with capture.global_and_fixture_disabled():
            if live:
                reporter.rewrite(text, erase=True)
            else:
                reporter.write_line(text)

    return Progress(write, live=bool(reporter.isatty))


@pytest.fixture(scope="session")
def modelcheck_environments(
    pytestconfig: pytest.Config,
    modelcheck_config: Config,
    modelcheck_server: EmbeddedServer | ExternalServer,
) -> Iterator[Environments]:
    """Environments by target, created on first use and closed at the end of the run."""
    environments = Environments(
        modelcheck_config,
        modelcheck_server,
        pytestconfig.stash[SEED_KEY],
        progress=pytest_progress(pytestconfig),
    )
    try:
        yield environments
        _summary.keep(pytestconfig, environments.summary())
        report = pytestconfig.getoption("modelcheck_report", None)
        if report and environments.by_target:
            Path(report).write_text(json.dumps(environments.report(), indent=2) + "\n")
    finally:
        environments.close()


@pytest.fixture(scope="session")
def modelcheck_environment(modelcheck_environments: Environments) -> MachineEnvironment:
    """The target chosen by ``--modelcheck-target`` and a pool of databases holding it."""
    return modelcheck_environments.get(modelcheck_environments.config.target)
