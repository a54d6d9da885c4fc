"""modelcheck: Hypothesis stateful model checking for PostgreSQL-backed versioning systems.

The public API is what ``__all__`` lists; every other module is private (``_name``)
or reached through these names. See docs/architecture.md for where each lives.
"""

from __future__ import annotations

# Order matters only for the reader: servers and databases, then the machine layer
# (machine -> rules -> interleaving -> faults import each other in that direction).
from modelcheck._config import Config
from modelcheck._domain.errors import DomainError
from modelcheck._isolation import CleanDatabase, DatabasePool, Installer, connect
from modelcheck._reference.target import ReferenceTarget
from modelcheck._server import EmbeddedServer, ExternalServer, PgInstall, Server, open_server
from modelcheck._target import (
    CommitResult,
    Drift,
    MergeResult,
    MigrationResult,
    Target,
    TrinityId,
    domain_error_from,
)
from modelcheck._targets import resolve_target
from modelcheck.errors import (
    ConfigError,
    CoverageError,
    InvalidTarget,
    ModelcheckError,
    ServerError,
    StateMismatch,
    TraceError,
)
from modelcheck.faults import FaultRules
from modelcheck.interleaving import InterleavedMachine, UndetectableWait
from modelcheck.machine import DifferentialMachine, MachineEnvironment, run_machine
from modelcheck.rules import (
    BranchRules,
    CommitRules,
    CreateBranchRules,
    DomainMachine,
    FocusedRules,
    MergeRules,
    MigrationRules,
    ScenarioRules,
)
from modelcheck.snapshot import Snapshot

__all__ = [
    "BranchRules",
    "CleanDatabase",
    "CommitResult",
    "CommitRules",
    "Config",
    "ConfigError",
    "CoverageError",
    "CreateBranchRules",
    "DatabasePool",
    "DifferentialMachine",
    "DomainError",
    "DomainMachine",
    "Drift",
    "EmbeddedServer",
    "ExternalServer",
    "FaultRules",
    "FocusedRules",
    "Installer",
    "InterleavedMachine",
    "InvalidTarget",
    "MachineEnvironment",
    "MergeResult",
    "MergeRules",
    "MigrationResult",
    "MigrationRules",
    "ModelcheckError",
    "PgInstall",
    "ReferenceTarget",
    "ScenarioRules",
    "Server",
    "ServerError",
    "Snapshot",
    "StateMismatch",
    "Target",
    "TraceError",
    "TrinityId",
    "UndetectableWait",
    "connect",
    "domain_error_from",
    "open_server",
    "resolve_target",
    "run_machine",
]
