"""What a versioned-store target provides, and the results it returns.

A target runs the operations of docs/domain.md against Postgres. Every operation is a
coroutine on a :class:`psycopg.AsyncConnection` the framework owns, so the concurrency
machines can send it without waiting and detect when it blocks. An operation returns
a result below or raises :class:`DomainError`; :func:`domain_error_from` turns a
Postgres error into one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, Protocol, runtime_checkable
from uuid import UUID

import psycopg
from attrs import frozen

from modelcheck.suites.vstore.domain.errors import DomainError
from modelcheck.target import Target

EntityKind = Literal["branch", "commit", "migration"]
MergeKind = Literal["up_to_date", "fast_forward", "merge"]
Operation = Mapping[str, Any]


@frozen
class TrinityId:
    """The three keys of an entity: internal ``pk``, public ``id``, human ``identifier``."""

    pk: int
    id: UUID
    identifier: str


@frozen
class CommitResult:
    commit: TrinityId
    version: str
    schema_hash: str


@frozen
class MigrationResult:
    migration: TrinityId
    checksum: str


@frozen
class MergeResult:
    kind: MergeKind
    commit: TrinityId | None
    version: str


@frozen
class Drift:
    """A branch whose live tree differs from what the store recorded."""

    branch: str
    objects: tuple[str, ...]


@runtime_checkable
class VersionedStoreTarget(Target, Protocol):
    """A target of the versioned-store suite (see docs/target-adapter.md)."""

    #: Schemas that belong to the store itself; observers skip them when reading trees.
    store_schemas: tuple[str, ...]

    async def create_branch(
        self, conn: psycopg.AsyncConnection[Any], name: str, from_branch: str
    ) -> TrinityId: ...

    async def delete_branch(self, conn: psycopg.AsyncConnection[Any], name: str) -> None: ...

    async def commit(
        self, conn: psycopg.AsyncConnection[Any], branch: str, message: str
    ) -> CommitResult: ...

    async def apply_migration(
        self,
        conn: psycopg.AsyncConnection[Any],
        branch: str,
        identifier: str,
        operations: Sequence[Operation],
    ) -> MigrationResult: ...

    async def rollback_migration(
        self, conn: psycopg.AsyncConnection[Any], identifier: str
    ) -> None: ...

    async def merge(
        self, conn: psycopg.AsyncConnection[Any], source: str, target: str
    ) -> MergeResult: ...

    async def log(self, conn: psycopg.AsyncConnection[Any], branch: str) -> tuple[str, ...]: ...

    async def resolve(
        self, conn: psycopg.AsyncConnection[Any], kind: EntityKind, key: int | UUID | str
    ) -> TrinityId: ...

    async def verify(self, conn: psycopg.AsyncConnection[Any]) -> tuple[Drift, ...]: ...


def domain_error_from(error: psycopg.Error) -> DomainError:
    """Classify a Postgres error: a domain kind (from the constraint-name field), an abort, or DDL.

    The kind travels in ``diag.constraint_name`` because PL/pgSQL's ``RAISE ... USING
    CONSTRAINT`` is the one free-form, structured field a client receives apart from the
    message; message text is never parsed.
    """
    from modelcheck.suites.vstore.spec import VSTORE  # one classifier, the spec's

    found = VSTORE.classify(error)
    return DomainError(found.kind, found.sqlstate, found.message)


def contains_nul(value: object) -> bool:
    """True when a text argument (at any depth) holds NUL, which Postgres text cannot store."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, Mapping):
        return any(contains_nul(k) or contains_nul(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(contains_nul(v) for v in value)
    return False
