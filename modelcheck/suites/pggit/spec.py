"""What pgGit v0.2.1 documents for its working core, as a model (docs/case-studies/pggit.md).

Citations are pgGit ``sql/file:line`` at tag v0.2.1 (``7ca29c6^:`` where 7ca29c6 mangled the
file). Ids and hashes the model cannot predict are opaque, bound by laws.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, Final

from attrs import define, field, frozen

from modelcheck.spec import (
    ENTITY_KEY,
    LOOKUP,
    RANDOM_KEY,
    Bindings,
    Opaque,
    Operation,
    OperationError,
    Spec,
    operation_table,
)

NAME: Final = re.compile(r"[a-zA-Z0-9._/#-]+")  # CHECK branch_name_format, 000_schema.sql:166-170
ERRORS: Final = {  # every explicit check is a plain RAISE EXCEPTION: P0001 plus its message
    "empty_name": "P0001",  # create_branch 009:16-22, commit_changes 7ca29c6^:029:57-59
    "name_too_long": "P0001",  # 009:24-26: a branch name has at most 255 characters
    "parent_not_found": "P0001",  # 009:29-35: the parent must be an ACTIVE branch
    "branch_not_found": "P0001",  # checkout_branch 009:285-306
    "protected_branch": "P0001",  # delete_branch_simple 7ca29c6^:029:275-277 (wrapped)
    "empty_message": "P0001",  # create_commit 014:19-25 (no trim)
    "message_too_long": "P0001",  # commit_changes 7ca29c6^:029:62-65 (after trim)
    "commit_failed": "P0001",  # commit_changes rewraps other errors, 7ca29c6^:029:124-125
    "invalid_increment_type": "P0001",  # increment_version 7ca29c6^:029:337-375
    "branches_name_key": "23505",  # branches.name UNIQUE, 000_schema.sql:105-122
    "branch_name_format": "23514",
}
UNSUPPORTED: Final = frozenset({"delete_branch", "merge", "verify_consistency", "begin_migration"})


def in_order(commits: Iterable[tuple[Any, ...]]) -> tuple[Any, ...]:
    """Commits as a sorted multiset (under concurrency id order is not commit order)."""
    return tuple(sorted(commits, key=lambda c: tuple("" if v is None else v for v in c)))


def _error(kind: str) -> OperationError:
    return OperationError(kind, ERRORS[kind])


@frozen
class Branch:
    id: int | None
    parent: str | None
    status: str  # ACTIVE | DELETED (pggit.branch_status)
    head: str | None  # the branch-point hash create_branch writes (009:38-45); no commit moves it
    objects: int | None  # active pggit.objects rows of the branch


@frozen
class PgGitState:
    branches: Mapping[str, Branch]
    #: (branch, message, tree_hash, parent_commit_hash), a sorted multiset.
    commits: tuple[tuple[str, str, str | None, str | None], ...]
    #: Commit hashes, for their laws only (FRESH: never a rolled-back one's).
    hashes: tuple[str, ...] = field(default=(), eq=False)


@define
class Model:
    parents: dict[str, str | None] = field(factory=lambda: {"main": None})
    status: dict[str, str] = field(factory=lambda: {"main": "ACTIVE"})
    objects: dict[str, int | None] = field(factory=lambda: {"main": None})  # None: main's
    headed: set[str] = field(factory=set)
    commits: list[tuple[str, str, str | None]] = field(factory=list)
    bindings: Bindings = field(factory=Bindings)

    def _name(self, name: str) -> None:
        if not name.strip():  # commit_changes trims (029:57); create_branch then fails the CHECK
            raise _error("empty_name")
        if len(name) > 255:
            raise _error("name_too_long")

    def _new(self, name: str, parent: str | None, objects: int | None) -> None:
        if not NAME.fullmatch(name):
            raise _error("branch_name_format")
        self.parents[name], self.status[name], self.objects[name] = parent, "ACTIVE", objects

    def _active(self, name: str) -> bool:
        return self.status.get(name) == "ACTIVE"

    def create_branch(self, name: str, parent: str) -> None:
        if name == "":
            raise _error("empty_name")
        if len(name) > 255:
            raise _error("name_too_long")
        if not self._active(parent):
            raise _error("parent_not_found")
        if NAME.fullmatch(name) and name in self.status:
            raise _error("branches_name_key")
        main = self.bindings.get("branch.objects", "main")  # 009:48-58 copies active objects
        self._new(name, parent, main if self.objects[parent] is None else self.objects[parent])
        self.headed.add(name)

    def commit(self, branch: str, message: str) -> None:
        """commit_changes (7ca29c6^:029:46-127): a missing branch is created off main with
        no objects (029:84-96); a DELETED one is made ACTIVE again (029:86-90)."""
        self._name(branch)
        if len(message.strip()) > 10000:
            raise _error("message_too_long")
        if branch in self.status:
            self.status[branch] = "ACTIVE"
        elif not NAME.fullmatch(branch):
            raise _error("commit_failed")
        else:
            self._new(branch, "main", 0)
        self.commits.append((branch, message.strip(), None))

    def create_commit(self, branch: str, message: str, sql: str) -> None:
        """create_commit (014:5-59): any branch of that name, or a new parentless one
        (014:33-41); tree_hash = sha256(sql) (014:44)."""
        if branch == "":
            raise _error("empty_name")
        if message == "":
            raise _error("empty_message")
        if len(branch) > 255:
            raise _error("name_too_long")
        if branch not in self.status:
            self._new(branch, None, 0)
        self.commits.append((branch, message, hashlib.sha256(sql.encode()).hexdigest()))

    def soft_delete_branch(self, name: str) -> None:
        """delete_branch_simple: a missing or inactive branch is a no-op (029:266-273)."""
        if self._active(name) and name in ("main", "master"):
            raise _error("protected_branch")
        if self._active(name):
            self.status[name] = "DELETED"

    def list_branches(self) -> tuple[tuple[str, str], ...]:
        return tuple(sorted(self.status.items()))

    def checkout_branch(self, name: str) -> str:
        if not self._active(name):
            raise _error("branch_not_found")
        return f"Checked out branch: {name} (ID: {self.bindings.get('branch.id', name)})"

    def increment_version(self, major: int, minor: int, patch: int, how: str) -> tuple[Any, ...]:
        bumped = {
            "major": (major + 1, 0, 0),
            "minor": (major, minor + 1, 0),
            "patch": (major, minor, patch + 1),
        }.get(how.lower())
        if bumped is None:
            raise _error("invalid_increment_type")
        return (*bumped, "{}.{}.{}".format(*bumped))


def _created(result: object, args: tuple[Any, ...]) -> Iterable[Opaque]:
    return [Opaque("branch.id", args[0], result, ENTITY_KEY)]


def _committed(result: object, args: tuple[Any, ...]) -> Iterable[Opaque]:
    return [Opaque("commit.hash", result, result, RANDOM_KEY)]


def _some_result(expected: object, actual: object, args: tuple[Any, ...]) -> Iterable[str]:
    return () if actual is not None else ["result: pgGit returned nothing"]


def _checked_out(expected: object, actual: object, args: tuple[Any, ...]) -> Iterable[str]:
    """The id is opaque: compared only once the model has bound it."""
    known = str(expected).removesuffix("(ID: None)")
    if not str(actual).startswith(known) or (known == expected) != (actual == expected):
        yield f"result: model={expected!r} db={actual!r}"


def _branch(args: tuple[Any, ...]) -> list[str]:
    return [str(args[0])]


class PgGitSpec(Spec[Model, PgGitState]):
    name: ClassVar[str] = "pggit"
    operations = operation_table(
        Operation("create_branch", compare=_some_result, opaque=_created, locks=_branch),
        Operation("commit", compare=_some_result, opaque=_committed, locks=_branch),
        Operation("create_commit", compare=_some_result, locks=_branch),
        Operation("soft_delete_branch", locks=_branch),
        Operation("list_branches", reads_only=True),
        Operation("checkout_branch", reads_only=True, compare=_checked_out),
        Operation("increment_version", reads_only=True),
        *(Operation(name) for name in sorted(UNSUPPORTED)),
    )
    error_kinds = ERRORS

    def initial_model(self) -> Model:
        return Model()

    def expected(self, model: Model, *, full: bool) -> PgGitState:
        bound = model.bindings
        main = bound.get("branch.objects", "main")
        branches = {
            name: Branch(
                bound.get("branch.id", name),
                model.parents[name],
                status,
                bound.get("branch.head", name) if name in model.headed else None,
                main if model.objects[name] is None else model.objects[name],
            )
            for name, status in model.status.items()
        }
        return PgGitState(branches, in_order((b, m, t, None) for b, m, t in model.commits))

    def state_opaque(self, model: Model, state: PgGitState) -> Iterable[Opaque]:
        for name, branch in state.branches.items():
            if name in model.status:
                yield Opaque("branch.id", name, branch.id, ENTITY_KEY)
            if name in model.headed:
                yield Opaque("branch.head", name, branch.head, RANDOM_KEY)
        if "main" in state.branches:
            yield Opaque("branch.objects", "main", state.branches["main"].objects, LOOKUP)
        for value in state.hashes:
            yield Opaque("commit.hash", value, value, RANDOM_KEY)


PGGIT: Final = PgGitSpec()
