"""The versioned store as a :class:`~modelcheck.spec.Spec`: one row per operation.

Each row says how the model's :class:`Predicted` result and the target's result
compare, which Trinity keys (``pk``, ``id``) a result carries as opaque values, and
which branch rows a successful call keeps locked (docs/domain.md, "Locking").
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, ClassVar, Final
from uuid import UUID

import psycopg

from modelcheck.spec import (
    ENTITY_KEY,
    LOOKUP,
    Law,
    Opaque,
    Operation,
    Spec,
    operation_table,
)
from modelcheck.suites.vstore.domain.errors import ERROR_KINDS
from modelcheck.suites.vstore.domain.model import Kind, Model, Predicted
from modelcheck.suites.vstore.results import (
    CommitResult,
    Drift,
    MergeResult,
    MigrationResult,
    TrinityId,
)
from modelcheck.suites.vstore.snapshot import (
    Snapshot,
    from_model,
    install_observer,
    read_snapshot,
)


def trinity_opaque(kind: Kind, keys: TrinityId, laws: frozenset[Law]) -> list[Opaque]:
    """An entity's pk and id as opaque values (ids are unique across every kind)."""
    return [
        Opaque(f"{kind}.pk", keys.identifier, keys.pk, laws),
        Opaque("uuid", (kind, keys.identifier), keys.id, laws - {Law.MONOTONIC}),
    ]


def _differ(what: str, model: Any, db: Any) -> Iterator[str]:
    if model != db:
        yield f"{what}: model={model!r} db={db!r}"


def _no_result(expected: Predicted, actual: Any, args: tuple[Any, ...]) -> Iterator[str]:
    yield from _differ("result", None, actual)


def _identifier(expected: Predicted, actual: Any, args: tuple[Any, ...]) -> Iterator[str]:
    if not isinstance(actual, TrinityId):
        yield f"result: expected a TrinityId, db gave {actual!r}"
        return
    yield from _differ("identifier", expected.identifier, actual.identifier)


def _commit(expected: Predicted, actual: Any, args: tuple[Any, ...]) -> Iterator[str]:
    if not isinstance(actual, CommitResult):
        yield f"result: expected a CommitResult, db gave {actual!r}"
        return
    yield from _differ("commit identifier", expected.identifier, actual.commit.identifier)
    yield from _differ("version", expected.version, actual.version)
    yield from _differ("schema_hash", expected.schema_hash, actual.schema_hash)


def _migration(expected: Predicted, actual: Any, args: tuple[Any, ...]) -> Iterator[str]:
    if not isinstance(actual, MigrationResult):
        yield f"result: expected a MigrationResult, db gave {actual!r}"
        return
    yield from _differ("migration identifier", expected.identifier, actual.migration.identifier)
    yield from _differ("checksum", expected.checksum, actual.checksum)


def _merge(expected: Predicted, actual: Any, args: tuple[Any, ...]) -> Iterator[str]:
    if not isinstance(actual, MergeResult):
        yield f"result: expected a MergeResult, db gave {actual!r}"
        return
    yield from _differ("merge kind", expected.merge_kind, actual.kind)
    yield from _differ("version", expected.version, actual.version)
    got = actual.commit.identifier if actual.commit else None
    yield from _differ("merge commit", expected.identifier, got)


def _log(expected: Predicted, actual: Any, args: tuple[Any, ...]) -> Iterator[str]:
    yield from _differ("log", expected.values, tuple(actual))


def _verify(expected: Predicted, actual: Any, args: tuple[Any, ...]) -> Iterator[str]:
    got = tuple((d.branch, tuple(d.objects)) for d in actual if isinstance(d, Drift))
    yield from _differ("verify", expected.values, got)


def _created(kind: Kind) -> Any:
    def opaque(result: Any, args: tuple[Any, ...]) -> Iterable[Opaque]:
        keys = result if isinstance(result, TrinityId) else getattr(result, kind, None)
        # A fast-forward returns the source's existing head: a look-up, not a creation
        # (were it FRESH, a rolled-back fast-forward would spend a live commit's keys).
        fresh = not (isinstance(result, MergeResult) and result.kind == "fast_forward")
        laws = ENTITY_KEY if fresh else LOOKUP
        return trinity_opaque(kind, keys, laws) if isinstance(keys, TrinityId) else ()

    return opaque


def _resolved(result: Any, args: tuple[Any, ...]) -> Iterable[Opaque]:
    return trinity_opaque(args[0], result, LOOKUP) if isinstance(result, TrinityId) else ()


def _from_db(operation: str) -> Any:
    def convert(result: Any) -> Predicted:
        keys = result
        for field in ("commit", "migration"):
            keys = getattr(keys, field, keys)
        identifier = keys.identifier if isinstance(keys, TrinityId) else None
        return Predicted(operation, identifier=identifier)

    return convert


OPERATIONS: Final = operation_table(
    Operation(
        "create_branch",
        compare=_identifier,
        opaque=_created("branch"),
        locks=lambda args: [args[1]],
        from_db=_from_db("create_branch"),
    ),
    Operation("delete_branch", compare=_no_result, locks=lambda args: [args[0]]),
    Operation(
        "commit",
        compare=_commit,
        opaque=_created("commit"),
        locks=lambda args: [args[0]],
        from_db=_from_db("commit"),
    ),
    Operation(
        "apply_migration",
        compare=_migration,
        opaque=_created("migration"),
        locks=lambda args: [args[0]],
        from_db=_from_db("apply_migration"),
    ),
    Operation("rollback_migration", compare=_no_result),
    Operation(
        "merge",
        compare=_merge,
        opaque=_created("commit"),
        locks=lambda args: [args[0], args[1]],
        from_db=_from_db("merge"),
    ),
    Operation("log", reads_only=True, compare=_log),
    Operation("resolve", reads_only=True, compare=_identifier, opaque=_resolved),
    Operation("verify", reads_only=True, compare=_verify),
)


class VersionedStoreSpec(Spec[Model, Snapshot]):
    """docs/domain.md: branches, commits, migrations and merges with Trinity IDs."""

    name: ClassVar[str] = "vstore"
    operations = OPERATIONS
    error_kinds = ERROR_KINDS

    def initial_model(self) -> Model:
        return Model.initial()

    def clone(self, model: Model) -> Model:
        return model.clone()

    def expected(self, model: Model, *, full: bool) -> Snapshot:
        return from_model(model, trees=full)

    def state_opaque(self, model: Model, state: Snapshot) -> Iterable[Opaque]:
        for kind, rows in (
            ("branch", state.branches),
            ("commit", state.commits),
            ("migration", state.migrations),
        ):
            known = model.entities(kind)  # type: ignore[arg-type]
            for identifier, row in rows.items():
                if identifier in known and row.pk is not None and row.id is not None:
                    keys = TrinityId(row.pk, row.id, identifier)
                    yield from trinity_opaque(kind, keys, ENTITY_KEY)  # type: ignore[arg-type]

    def install_observer(self, conn: psycopg.Connection[Any]) -> None:
        install_observer(conn)

    async def observe(
        self, conn: psycopg.AsyncConnection[Any], target: Any, *, full: bool
    ) -> Snapshot:
        return await read_snapshot(conn, target.store_schemas, trees=full)


VSTORE: Final = VersionedStoreSpec()


def bind_keys(
    model: Model, kind: Kind, identifier: str, pk: int, id: UUID, *, sequential: bool = False
) -> None:
    """Learn an entity's Trinity keys by their laws; ``AssertionError`` names a broken one."""
    for value in trinity_opaque(kind, TrinityId(pk, id, identifier), ENTITY_KEY):
        broken = model.bindings.learn(value, sequential=sequential)
        assert broken is None, broken
