"""The store of docs/domain.md implemented client-side: Python logic, SQLAlchemy Core queries.

Each operation runs in ``async with conn.transaction()`` on the framework's connection
(a savepoint when a transaction is already open), so it is atomic. It checks its
arguments first, then locks what it depends on (branch rows ``FOR UPDATE`` in ascending
``pk`` order; an advisory lock before checking a name is free), then reads and writes.
Store rows go through :mod:`._store` (SQLAlchemy Core compiled for psycopg), in the
target's own layout (schema ``sa_store``; see that module), which its own observer
(:mod:`._observe`) reads; the working trees are read from the catalog and changed with
real DDL (:mod:`._ddl`).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, ClassVar, Final, NamedTuple, TypeVar
from uuid import UUID

import psycopg
from psycopg import sql
from psycopg.pq import TransactionStatus
from sqlalchemy import Select, func, insert, literal, select, update

from modelcheck.spec import Capabilities
from modelcheck.suites.vstore.domain.errors import DomainError
from modelcheck.suites.vstore.domain.hashing import commit_identifier, operations_checksum
from modelcheck.suites.vstore.domain.tree import Tree
from modelcheck.suites.vstore.results import (
    CommitResult,
    Drift,
    EntityKind,
    MergeResult,
    MigrationResult,
    Operation,
    TrinityId,
    contains_nul,
    domain_error_from,
)
from modelcheck.suites.vstore.snapshot import Snapshot
from modelcheck.suites.vstore.spec import VSTORE, VersionedStoreSpec
from modelcheck.suites.vstore.sqlalchemy_target import _checks, _ddl, _observe, _trees
from modelcheck.suites.vstore.sqlalchemy_target._store import (
    KEYS,
    SCHEMA,
    branch_table,
    change_table,
    compile_statement,
    ddl_statements,
    fetch,
    revision_table,
)

MAIN: Final = "main"
ROOT_MESSAGE: Final = "root"
_BIGINT: Final = 2**63
_T = TypeVar("_T")

#: Raises a domain error server-side (kind in the constraint-name field, as
#: domain_error_from expects), so it aborts the caller's open transaction.
_RAISE_FUNCTION: Final = b"""
CREATE FUNCTION sa_store.raise_domain_error(kind text, state text, message text)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING MESSAGE = message, ERRCODE = state, CONSTRAINT = kind;
END
$$
"""
Conn = psycopg.AsyncConnection[Any]


def _plain(value: Any) -> Any:
    """Operations as plain JSON values (Mappings become dicts, tuples lists)."""
    if isinstance(value, dict) or hasattr(value, "items"):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _no_nul(*values: object) -> None:
    if contains_nul(list(values)):
        raise DomainError("nul_in_text", message="a text argument contains NUL")


async def _atomic(conn: Conn, body: Callable[[], Awaitable[_T]]) -> _T:
    """Run ``body`` as one atomic unit; Postgres errors keep their SQLSTATE.

    With no transaction open, ``body`` runs in its own. Inside a transaction the
    caller opened, an operation behaves like the one statement it stands for: any
    failure aborts that transaction (domain errors are re-raised by the server, so a
    later COMMIT rolls back), rather than being contained in a savepoint.
    """
    try:
        if conn.info.transaction_status == TransactionStatus.IDLE:
            async with conn.transaction():
                return await body()
        try:
            return await body()
        except DomainError as error:
            await conn.execute(
                "SELECT sa_store.raise_domain_error(%s, %s, %s)",
                (error.kind, error.sqlstate, error.message),
            )
            raise  # pragma: no cover - the statement above always raises
    except psycopg.Error as error:
        raise domain_error_from(error) from error


async def _advisory_lock(conn: Conn, namespace: str, name: str) -> None:
    await fetch(
        conn,
        select(
            func.pg_advisory_xact_lock(func.hashtextextended(literal(f"{namespace}:{name}"), 0))
        ),
    )


def _branch_columns() -> Select[Any]:
    b = branch_table.c
    return select(
        b.branch_no,
        b.public_id,
        b.name,
        b.state,
        b.head_revision,
        b.semver,
        b.workspace,
        b.recorded_hash,
        b.recorded_tree,
    )


class _Branch(NamedTuple):
    pk: int
    id: UUID
    identifier: str
    status: str
    head_pk: int
    version: str
    schema: str
    tree_hash: str
    tree_json: dict[str, Any]


async def _lock_branches(conn: Conn, names: Sequence[str]) -> dict[str, _Branch]:
    """``SELECT ... FOR UPDATE`` on the named branch rows, in ascending ``pk`` order."""
    rows = await fetch(
        conn,
        _branch_columns()
        .where(branch_table.c.name.in_(list(names)))
        .order_by(branch_table.c.branch_no)
        .with_for_update(),
    )
    return {row[2]: _Branch(*row) for row in rows}


def _active(found: dict[str, _Branch], name: str) -> _Branch:
    branch = found.get(name)
    if branch is None:
        raise DomainError("branch_not_found", message=f"no branch {name!r}")
    if branch.status != "active":
        raise DomainError("branch_deleted", message=f"branch {name!r} was deleted")
    return branch


async def _commit_row(conn: Conn, pk: int) -> tuple[str, str, str, Tree]:
    """(identifier, schema_hash, version, tree) of a commit."""
    r = revision_table.c
    ((identifier, schema_hash, version, tree),) = await fetch(
        conn, select(r.ident, r.tree_digest, r.semver, r.tree).where(r.revision_no == pk)
    )
    return identifier, schema_hash, version, _trees.from_json(tree)


async def _parents(conn: Conn) -> dict[int, list[int]]:
    """Every commit's parents, first parent first (the history is small and append-only)."""
    r = revision_table.c
    return {
        pk: list(parents) for pk, parents in await fetch(conn, select(r.revision_no, r.parents))
    }


def _ancestors(graph: dict[int, list[int]], start: int) -> set[int]:
    seen = {start}
    stack = [start]
    while stack:
        for parent in graph.get(stack.pop(), []):
            if parent not in seen:
                seen.add(parent)
                stack.append(parent)
    return seen


async def _add_commit(
    conn: Conn,
    branch: _Branch,
    parents: Sequence[int],
    message: str,
    tree: Tree,
) -> CommitResult:
    """Insert a commit on ``branch`` (version bumped against the first parent); move its head."""
    digest = _trees.tree_hash(tree)
    parent_ids = []
    first_tree = Tree()
    for position, parent in enumerate(parents):
        identifier, _, _, parent_tree = await _commit_row(conn, parent)
        parent_ids.append(identifier)
        if position == 0:
            first_tree = parent_tree
    version = _trees.bump(branch.version, _trees.classify(first_tree, tree))
    identifier = commit_identifier(branch.identifier, parent_ids, digest, message)
    ((pk, id_),) = await fetch(
        conn,
        insert(revision_table)
        .values(
            ident=identifier,
            branch_no=branch.pk,
            parents=list(parents),
            note=message,
            tree_digest=digest,
            semver=version,
            tree=_trees.to_json(tree),
        )
        .returning(revision_table.c.revision_no, revision_table.c.public_id),
    )
    await fetch(
        conn,
        update(branch_table)
        .where(branch_table.c.branch_no == branch.pk)
        .values(head_revision=pk, semver=version),
    )
    return CommitResult(TrinityId(pk, id_, identifier), version, digest)


async def _record_tree(conn: Conn, branch: _Branch, tree: Tree) -> None:
    await fetch(
        conn,
        update(branch_table)
        .where(branch_table.c.branch_no == branch.pk)
        .values(recorded_hash=_trees.tree_hash(tree), recorded_tree=_trees.to_json(tree)),
    )


class SQLAlchemyTarget:
    """docs/domain.md as client-side Python over SQLAlchemy Core and psycopg."""

    name: str = "sqlalchemy"
    spec: ClassVar[VersionedStoreSpec] = VSTORE
    #: Each operation is ``conn.transaction()``: a savepoint inside the caller's.
    capabilities: ClassVar[Capabilities] = Capabilities(transaction_safe=True)
    store_schemas: tuple[str, ...] = (SCHEMA,)

    # -- install -----------------------------------------------------------------------

    def install(self, conn: psycopg.Connection[Any]) -> None:
        """Create ``sa_store`` (types, tables), branch ``main`` (``wt_1``), the root
        commit, and what the observer reads the working trees with."""
        with conn.transaction():
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(SCHEMA)))
            for statement in ddl_statements():
                conn.execute(statement.encode())
            conn.execute(_RAISE_FUNCTION)
            _observe.install(conn)
            empty = Tree()
            digest = _trees.tree_hash(empty)
            root = commit_identifier(MAIN, [], digest, ROOT_MESSAGE)

            def run(stmt: Any) -> list[tuple[Any, ...]]:
                query, params = compile_statement(stmt)
                cur = conn.execute(query.encode(), params)
                return cur.fetchall() if cur.description is not None else []

            # The branch row needs a head and the commit needs a branch: insert the
            # branch with a placeholder head, then point it at the root commit.
            ((branch_pk,),) = run(
                insert(branch_table)
                .values(
                    name=MAIN,
                    head_revision=0,
                    state="active",
                    semver="0.0.0",
                    workspace="",
                    recorded_hash=digest,
                    recorded_tree=_trees.to_json(empty),
                )
                .returning(branch_table.c.branch_no)
            )
            ((commit_pk,),) = run(
                insert(revision_table)
                .values(
                    ident=root,
                    branch_no=branch_pk,
                    parents=[],
                    note=ROOT_MESSAGE,
                    tree_digest=digest,
                    semver="0.0.0",
                    tree=_trees.to_json(empty),
                )
                .returning(revision_table.c.revision_no)
            )
            schema = f"wt_{branch_pk}"
            run(
                update(branch_table)
                .where(branch_table.c.branch_no == branch_pk)
                .values(head_revision=commit_pk, workspace=schema)
            )
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))

    # -- branches ----------------------------------------------------------------------

    async def create_branch(self, conn: Conn, name: str, from_branch: str) -> TrinityId:

        async def body() -> TrinityId:
            _no_nul(name, from_branch)
            _checks.name(name)
            source = _active(await _lock_branches(conn, [from_branch]), from_branch)
            await _advisory_lock(conn, "branch", name)
            taken = await fetch(
                conn, select(branch_table.c.branch_no).where(branch_table.c.name == name)
            )
            if taken:
                raise DomainError("branch_exists", message=f"branch {name!r} exists")
            try:
                async with conn.transaction():
                    ((pk, id_),) = await fetch(
                        conn,
                        insert(branch_table)
                        .values(
                            name=name,
                            forked_from=source.pk,
                            head_revision=source.head_pk,
                            state="active",
                            semver=source.version,
                            workspace="",
                            recorded_hash="",
                            recorded_tree="{}",
                        )
                        .returning(branch_table.c.branch_no, branch_table.c.public_id),
                    )
            except psycopg.errors.UniqueViolation as error:
                raise DomainError("branch_exists", message=f"branch {name!r} exists") from error
            schema = f"wt_{pk}"
            await _ddl.copy_tree(conn, source.schema, schema)
            tree = await _trees.live_tree(conn, schema)
            await fetch(
                conn,
                update(branch_table)
                .where(branch_table.c.branch_no == pk)
                .values(
                    workspace=schema,
                    recorded_hash=_trees.tree_hash(tree),
                    recorded_tree=_trees.to_json(tree),
                ),
            )
            return TrinityId(pk, id_, name)

        return await _atomic(conn, body)

    async def delete_branch(self, conn: Conn, name: str) -> None:

        async def body() -> None:
            _no_nul(name)
            branch = _active(await _lock_branches(conn, [name]), name)
            if name == MAIN:
                raise DomainError("protected_branch", message="main cannot be deleted")
            empty = Tree()
            await fetch(
                conn,
                update(branch_table)
                .where(branch_table.c.branch_no == branch.pk)
                .values(
                    state="deleted",
                    recorded_hash=_trees.tree_hash(empty),
                    recorded_tree=_trees.to_json(empty),
                ),
            )
            await conn.execute(
                sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(branch.schema))
            )

        await _atomic(conn, body)

    # -- commits -----------------------------------------------------------------------

    async def commit(self, conn: Conn, branch: str, message: str) -> CommitResult:

        async def body() -> CommitResult:
            _no_nul(branch, message)
            _checks.message(message)
            found = _active(await _lock_branches(conn, [branch]), branch)
            live = await _trees.live_tree(conn, found.schema)
            if _trees.tree_hash(live) != found.tree_hash:
                raise DomainError("schema_drift", message=f"branch {branch!r} drifted")
            return await _add_commit(conn, found, [found.head_pk], message, live)

        return await _atomic(conn, body)

    # -- migrations --------------------------------------------------------------------

    async def apply_migration(
        self, conn: Conn, branch: str, identifier: str, operations: Sequence[Operation]
    ) -> MigrationResult:
        ops = _plain(operations)

        async def body() -> MigrationResult:
            _no_nul(branch, identifier, ops)
            _checks.migration_identifier(identifier)
            _checks.operations(ops)
            found = _active(await _lock_branches(conn, [branch]), branch)
            checksum = operations_checksum(ops)
            await _advisory_lock(conn, "migration", identifier)
            m = change_table.c
            existing = await fetch(conn, select(m.checksum).where(m.ident == identifier))
            if existing:
                if existing[0][0] != checksum:
                    raise DomainError("checksum_mismatch", message=f"{identifier!r} changed")
                raise DomainError("migration_exists", message=f"{identifier!r} exists")
            inverse = await _ddl.run_operations(conn, found.schema, ops, record_inverse=True)
            try:
                async with conn.transaction():
                    ((pk, id_),) = await fetch(
                        conn,
                        insert(change_table)
                        .values(
                            ident=identifier,
                            branch_no=found.pk,
                            checksum=checksum,
                            state="applied",
                            ops=json.dumps(ops, ensure_ascii=False),
                            undo=json.dumps(inverse, ensure_ascii=False),
                        )
                        .returning(m.change_no, m.public_id),
                    )
            except psycopg.errors.UniqueViolation as error:
                raise DomainError("migration_exists", message=f"{identifier!r} exists") from error
            await _record_tree(conn, found, await _trees.live_tree(conn, found.schema))
            return MigrationResult(TrinityId(pk, id_, identifier), checksum)

        return await _atomic(conn, body)

    async def rollback_migration(self, conn: Conn, identifier: str) -> None:
        m = change_table.c

        async def body() -> None:
            _no_nul(identifier)
            rows = await fetch(conn, select(m.branch_no).where(m.ident == identifier))
            if not rows:
                raise DomainError("migration_not_found", message=f"no migration {identifier!r}")
            b = branch_table.c
            locked = await fetch(
                conn, _branch_columns().where(b.branch_no == rows[0][0]).with_for_update()
            )
            found = _active({r[2]: _Branch(*r) for r in locked}, locked[0][2])
            ((pk, status, inverse),) = await fetch(
                conn, select(m.change_no, m.state, m.undo).where(m.ident == identifier)
            )
            if status != "applied":
                raise DomainError("migration_not_applied", message=f"{identifier!r} rolled back")
            ((latest,),) = await fetch(
                conn,
                select(func.max(m.change_no)).where(m.branch_no == found.pk, m.state == "applied"),
            )
            if latest != pk:
                raise DomainError("not_latest_migration", message=f"{identifier!r} is not latest")
            await _ddl.run_operations(conn, found.schema, inverse, record_inverse=False)
            await fetch(
                conn, update(change_table).where(m.change_no == pk).values(state="rolled_back")
            )
            await _record_tree(conn, found, await _trees.live_tree(conn, found.schema))

        await _atomic(conn, body)

    # -- merges ------------------------------------------------------------------------

    async def merge(self, conn: Conn, source: str, target: str) -> MergeResult:

        async def body() -> MergeResult:
            _no_nul(source, target)
            found = await _lock_branches(conn, [source, target])
            theirs_branch = _active(found, source)
            ours_branch = _active(found, target)
            if source == target:
                raise DomainError("invalid_name", message="cannot merge a branch into itself")
            _, head_hash, _, ours = await _commit_row(conn, ours_branch.head_pk)
            if ours_branch.tree_hash != head_hash:
                raise DomainError("uncommitted_changes", message=f"{target!r} has changes")
            s, t = theirs_branch.head_pk, ours_branch.head_pk
            graph = await _parents(conn)
            from_target = _ancestors(graph, t)
            if s in from_target:
                return MergeResult("up_to_date", None, ours_branch.version)
            from_source = _ancestors(graph, s)
            theirs_id, theirs_hash, theirs_version, theirs = await _commit_row(conn, s)
            if t in from_source:
                await _ddl.move_tree(conn, ours_branch.schema, theirs)
                await fetch(
                    conn,
                    update(branch_table)
                    .where(branch_table.c.branch_no == ours_branch.pk)
                    .values(
                        head_revision=s,
                        semver=theirs_version,
                        recorded_hash=theirs_hash,
                        recorded_tree=_trees.to_json(theirs),
                    ),
                )
                ((id_,),) = await fetch(
                    conn,
                    select(revision_table.c.public_id).where(revision_table.c.revision_no == s),
                )
                head = TrinityId(s, id_, theirs_id)
                return MergeResult("fast_forward", head, theirs_version)
            _, _, _, base = await _commit_row(conn, max(from_source & from_target))
            merged = _trees.merge_trees(base, ours, theirs)
            await _ddl.move_tree(conn, ours_branch.schema, merged)
            result = await _add_commit(
                conn, ours_branch, [t, s], f"merge {source} into {target}", merged
            )
            await _record_tree(conn, ours_branch, merged)
            return MergeResult("merge", result.commit, result.version)

        return await _atomic(conn, body)

    # -- reads -------------------------------------------------------------------------

    async def log(self, conn: Conn, branch: str) -> tuple[str, ...]:

        async def body() -> tuple[str, ...]:
            _no_nul(branch)
            rows = await fetch(conn, _branch_columns().where(branch_table.c.name == branch))
            found = _active({r[2]: _Branch(*r) for r in rows}, branch)
            graph = await _parents(conn)
            names = dict(
                await fetch(conn, select(revision_table.c.revision_no, revision_table.c.ident))
            )
            chain = [found.head_pk]
            while graph.get(chain[-1]):
                chain.append(graph[chain[-1]][0])
            return tuple(names[pk] for pk in chain)

        return await _atomic(conn, body)

    async def resolve(self, conn: Conn, kind: EntityKind, key: int | UUID | str) -> TrinityId:
        if isinstance(key, bool) or not isinstance(key, (int, UUID, str)):
            raise TypeError(f"resolve key must be int, UUID or str, not {key!r}")

        async def body() -> TrinityId:
            _no_nul(key)
            keys = KEYS.get(kind)
            if keys is None:
                raise DomainError("not_found", message=f"no entity kind {kind!r}")
            if isinstance(key, int):
                if not -_BIGINT <= key < _BIGINT:
                    raise DomainError("not_found", message=f"no {kind} {key!r}")
                condition = keys.pk == key
            elif isinstance(key, UUID):
                condition = keys.id == key
            else:
                condition = keys.identifier == key
            rows = await fetch(conn, select(keys.pk, keys.id, keys.identifier).where(condition))
            if not rows:
                raise DomainError("not_found", message=f"no {kind} {key!r}")
            pk, id_, identifier = rows[0]
            return TrinityId(pk, id_, identifier)

        return await _atomic(conn, body)

    async def verify(self, conn: Conn) -> tuple[Drift, ...]:
        async def body() -> tuple[Drift, ...]:
            b = branch_table.c
            rows = await fetch(
                conn,
                select(b.name, b.workspace, b.recorded_hash, b.recorded_tree).where(
                    b.state == "active"
                ),
            )
            drifts = []
            for name, schema, recorded_hash, recorded in sorted(rows, key=lambda r: r[0].encode()):
                live = await _trees.live_tree(conn, schema)
                if _trees.tree_hash(live) != recorded_hash:
                    objects = _trees.drifted_objects(live, _trees.from_json(recorded))
                    drifts.append(Drift(name, objects))
            return tuple(drifts)

        return await _atomic(conn, body)

    # -- observer ----------------------------------------------------------------------

    async def observe(self, conn: Conn, *, full: bool) -> Snapshot:
        """The state in this target's own layout (one round trip; see :mod:`._observe`)."""
        return await _observe.observe(conn, self.store_schemas, full=full)
