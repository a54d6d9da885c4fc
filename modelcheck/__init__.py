"""modelcheck: Hypothesis stateful model checking for PostgreSQL-backed versioning systems.

The public API is what ``__all__`` lists; every other module is private (``_name``)
or reached through these names. See docs/architecture.md for where each lives.

The engine's seam (:class:`Spec`, :class:`Operation`, :class:`Opaque`, :class:`Law`,
:class:`Capabilities`, :class:`Target`) is what any suite builds on; the built-in
versioned-store suite's names (its rules, targets and results) are re-exported here
too, for the machines and tests that check it.
"""

from __future__ import annotations

# Order matters only for the reader: servers and databases, the seam, the machine
# layer, then the built-in suite (which imports the engine, never the reverse).
from modelcheck._config import Config
from modelcheck._postgres.isolation import CleanDatabase, DatabasePool, Installer, connect
from modelcheck._postgres.server import (
    EmbeddedServer,
    ExternalServer,
    PgInstall,
    Server,
    open_server,
)
from modelcheck._targets import resolve_target
from modelcheck.errors import (
    ConfigError,
    CoverageError,
    InvalidTarget,
    Mismatch,
    ModelcheckError,
    ServerError,
    StateMismatch,
    TraceError,
)
from modelcheck.faults import BackendFaultRules
from modelcheck.interleaving import InterleavedMachine, UndetectableWait
from modelcheck.machine import DifferentialMachine, MachineEnvironment, run_machine
from modelcheck.spec import (
    CONTENT_HASH,
    ENTITY_KEY,
    LEGAL_ABORTS,
    LOOKUP,
    RANDOM_KEY,
    Bindings,
    Capabilities,
    InvalidDefinition,
    Law,
    Opaque,
    Operation,
    OperationError,
    Spec,
    operation_table,
)
from modelcheck.suites.vstore.domain.errors import DomainError
from modelcheck.suites.vstore.faults import FaultRules
from modelcheck.suites.vstore.reference.target import ReferenceTarget
from modelcheck.suites.vstore.results import (
    CommitResult,
    Drift,
    MergeResult,
    MigrationResult,
    TrinityId,
    VersionedStoreTarget,
    domain_error_from,
)
from modelcheck.suites.vstore.rules import (
    BranchRules,
    CommitRules,
    CreateBranchRules,
    DomainMachine,
    FocusedRules,
    MergeRules,
    MigrationRules,
    ScenarioRules,
    StaleSnapshotRules,
)
from modelcheck.suites.vstore.snapshot import Snapshot
from modelcheck.suites.vstore.spec import VSTORE, VersionedStoreSpec
from modelcheck.target import Target

__all__ = [
    "CONTENT_HASH",
    "ENTITY_KEY",
    "LEGAL_ABORTS",
    "LOOKUP",
    "RANDOM_KEY",
    "VSTORE",
    "BackendFaultRules",
    "Bindings",
    "BranchRules",
    "Capabilities",
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
    "InvalidDefinition",
    "InvalidTarget",
    "Law",
    "MachineEnvironment",
    "MergeResult",
    "MergeRules",
    "MigrationResult",
    "MigrationRules",
    "Mismatch",
    "ModelcheckError",
    "Opaque",
    "Operation",
    "OperationError",
    "PgInstall",
    "ReferenceTarget",
    "ScenarioRules",
    "Server",
    "ServerError",
    "Snapshot",
    "Spec",
    "StaleSnapshotRules",
    "StateMismatch",
    "Target",
    "TraceError",
    "TrinityId",
    "UndetectableWait",
    "VersionedStoreSpec",
    "VersionedStoreTarget",
    "connect",
    "domain_error_from",
    "open_server",
    "operation_table",
    "resolve_target",
    "run_machine",
]
