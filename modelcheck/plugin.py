"""The pytest plugin (entry point ``pytest11``): options, profiles and fixtures.

Options are read once, at ``pytest_configure``, into a frozen :class:`Config`, so
every fixture and report line sees the same choice.

Fixtures: ``modelcheck_config`` (session), ``modelcheck_server`` (session),
``modelcheck_installer`` (session, returns None; override it to install a schema),
``modelcheck_pool`` (session), ``modelcheck_database`` (function) and
``modelcheck_connection`` (function).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import attrs
import hypothesis
import pytest

from modelcheck import _summary
from modelcheck._config import ENV_DSN, PROFILES, Config, register_profiles
from modelcheck._machine_fixtures import (
    SEED_KEY,
    choose_seed,
    modelcheck_environment,
    modelcheck_environments,
)
from modelcheck._postgres.isolation import CleanDatabase, Connection, DatabasePool, Installer
from modelcheck._postgres.server import (
    EmbeddedServer,
    ExternalServer,
    connect_admin,
    find_postgres,
    open_server,
)
from modelcheck._targets import resolve_target
from modelcheck.errors import ModelcheckError

#: Trace files and the shared example database (options --modelcheck-traces, ...).
pytest_plugins = ["modelcheck._traces.plugin"]

__all__ = ["modelcheck_environment", "modelcheck_environments"]

_CONFIG_KEY = pytest.StashKey[Config]()
#: The Hypothesis profile actually loaded (ours, or an explicit --hypothesis-profile).
_PROFILE_KEY = pytest.StashKey[str]()


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register the ``--modelcheck-*`` options."""
    group = parser.getgroup("modelcheck", "modelcheck: PostgreSQL model checking")
    group.addoption(
        "--modelcheck-dsn",
        default=None,
        help=f"Use this existing server instead of an embedded one (env {ENV_DSN}).",
    )
    group.addoption(
        "--modelcheck-pg-bin",
        default=None,
        help="PostgreSQL bin dir for the embedded cluster (env MODELCHECK_PG_BIN).",
    )
    group.addoption(
        "--modelcheck-profile",
        default=None,
        choices=sorted(PROFILES),
        help="Hypothesis settings profile: dev (default), ci, weekly (env MODELCHECK_PROFILE).",
    )
    group.addoption(
        "--modelcheck-report",
        default=None,
        help="Write a JSON report of the machines run (per machine: outcome, steps, rules).",
    )
    group.addoption(
        "--modelcheck-target",
        default=None,
        help="The target to check, e.g. module:attribute (env MODELCHECK_TARGET).",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Read the options once, register markers and load the Hypothesis profile."""
    config.addinivalue_line("markers", "postgres: needs a PostgreSQL server")
    config.addinivalue_line("markers", "slow: takes seconds; still part of the test suite")
    try:
        mc_config = Config.resolve(
            dsn=config.getoption("modelcheck_dsn"),
            pg_bin=config.getoption("modelcheck_pg_bin"),
            profile=config.getoption("modelcheck_profile"),
            target=config.getoption("modelcheck_target"),
        )
        _check_reachable(mc_config)
    except ModelcheckError as exc:
        # One usage error, before any fixture: no traceback, so no secret in one.
        raise pytest.UsageError(str(exc)) from None
    config.stash[SEED_KEY] = choose_seed(config.getoption("hypothesis_seed", None))
    register_profiles()
    # An explicit --hypothesis-profile wins unless ours was also given explicitly; when
    # it names one of our profiles, the rest of modelcheck follows it too.
    explicit_hypothesis = config.getoption("hypothesis_profile", None)
    if explicit_hypothesis is None or config.getoption("modelcheck_profile") is not None:
        hypothesis.settings.load_profile(mc_config.profile)
        config.stash[_PROFILE_KEY] = mc_config.profile
    else:
        config.stash[_PROFILE_KEY] = explicit_hypothesis
        if explicit_hypothesis in PROFILES:
            mc_config = attrs.evolve(mc_config, profile=explicit_hypothesis)
    config.stash[_CONFIG_KEY] = mc_config


def _check_reachable(mc_config: Config) -> None:
    """A configured target must resolve and a configured server must answer, checked
    once here rather than once per machine in a fixture traceback."""
    if mc_config.target is not None:
        resolve_target(mc_config.target)
    if mc_config.dsn is not None:
        connect_admin(mc_config.dsn).close()


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """pytest-xdist: a worker is done; keep its machines' coverage lines."""
    _summary.received(node.config, node)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """Every run ends with each machine's coverage table."""
    _summary.write(terminalreporter, config)


def get_config(config: pytest.Config) -> Config:
    """The modelcheck config of a pytest run."""
    return config.stash[_CONFIG_KEY]


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Say which server and which Hypothesis profile and seed this run uses."""
    mc_config = config.stash.get(_CONFIG_KEY, None)
    if mc_config is None:
        return []
    if mc_config.dsn is not None:
        server = ExternalServer(mc_config.dsn).describe()
    else:
        try:
            install = find_postgres(mc_config.pg_bin)
            server = (
                f"embedded PostgreSQL {install.version} from {install.bin_dir} "
                f"({install.source}), started on first use"
            )
        except ModelcheckError as exc:
            server = f"none available ({exc})"
    current = hypothesis.settings()  # inherits the loaded profile
    seed_text = f"seed={config.stash[SEED_KEY]} (replay with --hypothesis-seed=<seed>)"
    return [
        f"modelcheck: server: {server}",
        f"modelcheck: hypothesis profile={config.stash.get(_PROFILE_KEY, mc_config.profile)} "
        f"(max_examples={current.max_examples}, "
        f"stateful_step_count={current.stateful_step_count}), {seed_text}",
    ]


@pytest.fixture(scope="session")
def modelcheck_config(pytestconfig: pytest.Config) -> Config:
    """The frozen config read from options and environment."""
    return get_config(pytestconfig)


@pytest.fixture(scope="session")
def modelcheck_server(
    modelcheck_config: Config,
) -> Iterator[EmbeddedServer | ExternalServer]:
    """The server for this session: an embedded cluster, or the one given by DSN."""
    server = open_server(modelcheck_config)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def modelcheck_installer() -> Installer | None:
    """Installs the target schema into the template; override to install yours."""
    return None


@pytest.fixture(scope="session")
def modelcheck_pool(
    modelcheck_server: EmbeddedServer | ExternalServer,
    modelcheck_installer: Installer | None,
) -> Iterator[DatabasePool]:
    """Clean databases cloned ahead from a template (use ``pool.database()`` per example)."""
    with DatabasePool(modelcheck_server, modelcheck_installer) as pool:
        yield pool


@pytest.fixture
def modelcheck_database(modelcheck_pool: DatabasePool) -> Iterator[CleanDatabase]:
    """A clean database for one test (for one Hypothesis example, use the pool)."""
    with modelcheck_pool.database() as db:
        yield db


@pytest.fixture
def modelcheck_connection(
    modelcheck_pool: DatabasePool, modelcheck_database: CleanDatabase
) -> Connection:
    """A connection to ``modelcheck_database``; closed when the database is released."""
    return modelcheck_pool.connect(modelcheck_database)
