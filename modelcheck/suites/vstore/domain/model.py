"""The in-memory model of the versioned schema store (docs/domain.md), no database.

Every operation validates in the documented order, then either raises the
:class:`DomainError` the database must raise or changes the state and returns the
result the database must return. ``pk`` and ``id`` are not predictable: results carry
``None`` for them, and the machine binds the observed values with :meth:`Model.bind`.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any, Literal
from uuid import UUID

from attrs import define, field

from modelcheck.spec import Bindings
from modelcheck.suites.vstore.domain import ddl, hashing, merge, validation, versions
from modelcheck.suites.vstore.domain.errors import DomainError
from modelcheck.suites.vstore.domain.tree import Tree

Kind = Literal["branch", "commit", "migration"]
MAIN = "main"
ROOT_MESSAGE = "root"


@define
class Key:
    """An entity's human key; its ``pk`` and ``id`` are opaque values in ``Model.bindings``."""

    identifier: str


@define
class Branch:
    key: Key
    parent: str | None
    head: str
    status: Literal["active", "deleted"]
    version: str
    #: The live working tree (out-of-band DDL changes only this one).
    tree: Tree
    #: The tree the store believes the branch has; its hash is ``tree_hash``.
    recorded: Tree


@define
class Commit:
    key: Key
    branch: str
    parents: tuple[str, ...]
    message: str
    tree: Tree
    schema_hash: str
    version: str


@define
class Migration:
    key: Key
    branch: str
    operations: list[dict[str, Any]]
    inverse: list[dict[str, Any]]
    checksum: str
    status: Literal["applied", "rolled_back"]


@define
class Predicted:
    """An operation's result as the model predicts it (Trinity IDs by identifier)."""

    kind: str
    identifier: str | None = None
    version: str | None = None
    schema_hash: str | None = None
    checksum: str | None = None
    merge_kind: str | None = None
    values: tuple[Any, ...] = ()


@define
class Model:
    branches: dict[str, Branch] = field(factory=dict)
    commits: dict[str, Commit] = field(factory=dict)
    migrations: dict[str, Migration] = field(factory=dict)
    #: The pks and ids learned from the database (opaque values bound by laws).
    bindings: Bindings = field(factory=Bindings)
    #: Creation order of commits, the model's stand-in for pk order before binding.
    order: dict[str, int] = field(factory=dict)

    @classmethod
    def initial(cls) -> Model:
        """The store right after install: ``main`` with its root commit."""
        model = cls()
        empty = Tree()
        digest = hashing.tree_hash(empty)
        root = hashing.commit_identifier(MAIN, [], digest, ROOT_MESSAGE)
        model.commits[root] = Commit(Key(root), MAIN, (), ROOT_MESSAGE, empty, digest, "0.0.0")
        model.order[root] = 0
        model.branches[MAIN] = Branch(Key(MAIN), None, root, "active", "0.0.0", empty, empty)
        return model

    def clone(self) -> Model:
        return copy.deepcopy(self)

    # -- binding ---------------------------------------------------------------------

    def entities(self, kind: Kind) -> Mapping[str, Branch | Commit | Migration]:
        """The branches, commits or migrations, by identifier."""
        if kind == "branch":
            return self.branches
        if kind == "commit":
            return self.commits
        return self.migrations

    def entity_key(self, kind: Kind, identifier: str) -> Key:
        return self.entities(kind)[identifier].key

    def pk_of(self, kind: Kind, identifier: str) -> int | None:
        """The entity's pk once the machine has learned it."""
        return self.bindings.get(f"{kind}.pk", identifier)  # type: ignore[no-any-return]

    def id_of(self, kind: Kind, identifier: str) -> UUID | None:
        return self.bindings.get("uuid", (kind, identifier))  # type: ignore[no-any-return]

    # -- checks ------------------------------------------------------------------------

    def _active(self, name: str) -> Branch:
        branch = self.branches.get(name)
        if branch is None:
            raise DomainError("branch_not_found", message=f"no branch {name!r}")
        if branch.status == "deleted":
            raise DomainError("branch_deleted", message=f"branch {name!r} was deleted")
        return branch

    @staticmethod
    def _no_nul(*values: object) -> None:
        from modelcheck.suites.vstore.results import contains_nul

        if contains_nul(list(values)):
            raise DomainError("nul_in_text", message="text contains NUL")

    # -- operations --------------------------------------------------------------------

    def create_branch(self, name: str, from_branch: str) -> Predicted:
        self._no_nul(name, from_branch)
        validation.check_name(name, "branch name")
        source = self._active(from_branch)
        if name in self.branches:
            raise DomainError("branch_exists", message=f"branch {name!r} exists")
        tree = copy.deepcopy(source.tree)
        self.branches[name] = Branch(
            Key(name), from_branch, source.head, "active", source.version, tree, tree
        )
        return Predicted("create_branch", identifier=name)

    def delete_branch(self, name: str) -> Predicted:
        self._no_nul(name)
        branch = self._active(name)
        if name == MAIN:
            raise DomainError("protected_branch", message="main cannot be deleted")
        branch.status = "deleted"
        branch.tree = branch.recorded = Tree()
        return Predicted("delete_branch")

    def commit(self, name: str, message: str) -> Predicted:
        self._no_nul(name, message)
        validation.check_message(message)
        branch = self._active(name)
        digest = hashing.tree_hash(branch.tree)
        if digest != hashing.tree_hash(branch.recorded):
            raise DomainError("schema_drift", message=f"branch {name!r} drifted")
        return self._add_commit(branch, (branch.head,), message, branch.tree.without_rows())

    def _add_commit(
        self, branch: Branch, parents: tuple[str, ...], message: str, tree: Tree
    ) -> Predicted:
        digest = hashing.tree_hash(tree)
        parent = self.commits[parents[0]]
        version = versions.bump(branch.version, versions.classify(parent.tree, tree))
        identifier = hashing.commit_identifier(branch.key.identifier, parents, digest, message)
        self.commits[identifier] = Commit(
            Key(identifier), branch.key.identifier, parents, message, tree, digest, version
        )
        self.order[identifier] = len(self.order)
        branch.head, branch.version = identifier, version
        return Predicted("commit", identifier=identifier, version=version, schema_hash=digest)

    def apply_migration(
        self, name: str, identifier: str, operations: Sequence[Mapping[str, Any]]
    ) -> Predicted:
        self._no_nul(name, identifier, list(operations))
        validation.check_migration_identifier(identifier)
        validation.check_operations(list(operations))
        branch = self._active(name)
        checksum = hashing.operations_checksum(list(operations))
        existing = self.migrations.get(identifier)
        if existing is not None:
            if existing.checksum != checksum:
                raise DomainError("checksum_mismatch", message=f"{identifier!r} changed")
            raise DomainError("migration_exists", message=f"{identifier!r} was applied before")
        tree, inverse = ddl.run(branch.tree, operations)
        branch.tree = branch.recorded = tree
        self.migrations[identifier] = Migration(
            Key(identifier), name, [dict(op) for op in operations], inverse, checksum, "applied"
        )
        return Predicted("apply_migration", identifier=identifier, checksum=checksum)

    def rollback_migration(self, identifier: str) -> Predicted:
        self._no_nul(identifier)
        migration = self.migrations.get(identifier)
        if migration is None:
            raise DomainError("migration_not_found", message=f"no migration {identifier!r}")
        branch = self._active(migration.branch)
        if migration.status != "applied":
            raise DomainError("migration_not_applied", message=f"{identifier!r} rolled back")
        latest = max(
            (
                m
                for m in self.migrations.values()
                if m.branch == migration.branch and m.status == "applied"
            ),
            key=self._migration_order,
        )
        if latest is not migration:
            raise DomainError("not_latest_migration", message=f"{identifier!r} is not latest")
        tree, _ = ddl.run(branch.tree, migration.inverse)
        branch.tree = branch.recorded = tree
        migration.status = "rolled_back"
        return Predicted("rollback_migration")

    def _migration_order(self, migration: Migration) -> int:
        return list(self.migrations).index(migration.key.identifier)

    def merge(self, source_name: str, target_name: str) -> Predicted:
        self._no_nul(source_name, target_name)
        source = self._active(source_name)
        target = self._active(target_name)
        if source_name == target_name:
            raise DomainError("invalid_name", message="cannot merge a branch into itself")
        head = self.commits[target.head]
        if hashing.tree_hash(target.recorded) != head.schema_hash:
            raise DomainError("uncommitted_changes", message=f"{target_name!r} has changes")
        parents = {c: self.commits[c].parents for c in self.commits}
        if merge.is_ancestor(parents, source.head, target.head):
            return Predicted("merge", merge_kind="up_to_date", version=target.version)
        theirs = self.commits[source.head]
        if merge.is_ancestor(parents, target.head, source.head):
            target.tree = target.recorded = merge.apply_tree(target.tree, theirs.tree)
            target.head, target.version = theirs.key.identifier, theirs.version
            return Predicted(
                "merge",
                merge_kind="fast_forward",
                identifier=theirs.key.identifier,
                version=target.version,
            )
        common = merge.ancestors(parents, source.head) & merge.ancestors(parents, target.head)
        base = self.commits[max(common, key=self._commit_rank)]
        merged = merge.merge_trees(base.tree, head.tree, theirs.tree)
        tree = merge.apply_tree(target.tree, merged)
        message = f"merge {source_name} into {target_name}"
        result = self._add_commit(
            target, (head.key.identifier, theirs.key.identifier), message, merged
        )
        target.tree = target.recorded = tree
        return Predicted(
            "merge",
            merge_kind="merge",
            identifier=result.identifier,
            version=result.version,
        )

    def _commit_rank(self, identifier: str) -> tuple[int, int]:
        pk = self.pk_of("commit", identifier)
        return (pk if pk is not None else 1 << 62, self.order[identifier])

    # -- reads -------------------------------------------------------------------------

    def log(self, name: str) -> Predicted:
        self._no_nul(name)
        branch = self._active(name)
        chain = [branch.head]
        while self.commits[chain[-1]].parents:
            chain.append(self.commits[chain[-1]].parents[0])
        return Predicted("log", values=tuple(chain))

    def resolve(self, kind: Kind, key: int | UUID | str) -> Predicted:
        self._no_nul(key)
        for identifier in self.entities(kind):
            if (isinstance(key, int) and self.pk_of(kind, identifier) == key) or (
                isinstance(key, UUID) and self.id_of(kind, identifier) == key
            ):
                return Predicted("resolve", identifier=identifier)
            if isinstance(key, str) and identifier == key:
                return Predicted("resolve", identifier=identifier)
        raise DomainError("not_found", message=f"no {kind} {key!r}")

    def verify(self) -> Predicted:
        drifts = []
        for name in sorted(self.branches, key=str.encode):
            branch = self.branches[name]
            if branch.status != "active":
                continue
            if hashing.tree_hash(branch.tree) == hashing.tree_hash(branch.recorded):
                continue
            live, recorded = branch.tree, branch.recorded
            objects = {
                n
                for n in {*live.tables, *recorded.tables}
                if live.tables.get(n, None) is None
                or recorded.tables.get(n) is None
                or live.tables[n].columns != recorded.tables[n].columns
            }
            objects |= {
                n
                for n in {*live.indexes, *recorded.indexes}
                if live.indexes.get(n) != recorded.indexes.get(n)
            }
            drifts.append((name, tuple(sorted(objects, key=str.encode))))
        return Predicted("verify", values=tuple(drifts))
