"""The model on its own: its invariants hold over random operation sequences.

No database here. Keys are bound the way a database would assign them (identity
counters that never go back, random UUIDs), then the invariants of docs/domain.md are
checked after every step: Trinity IDs unique, immutable and never reused; versions
monotone per branch; history acyclic with the first parent on the same branch until a
merge; the merge base a common ancestor with no common-ancestor descendant.
"""

from __future__ import annotations

import itertools
import uuid
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, rule

from modelcheck.suites.vstore import strategies
from modelcheck.suites.vstore.domain import merge as merging
from modelcheck.suites.vstore.domain.errors import DomainError
from modelcheck.suites.vstore.domain.model import Kind, Model, Predicted
from modelcheck.suites.vstore.spec import bind_keys


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split("."))


class ModelInvariants(RuleBasedStateMachine):
    branches = Bundle("branches")

    def __init__(self) -> None:
        super().__init__()
        self.model = Model.initial()
        self.pks = {k: itertools.count(1) for k in ("branch", "commit", "migration")}
        self.keys_seen: dict[tuple[str, str], tuple[int | None, uuid.UUID | None]] = {}
        self.versions_seen: dict[str, tuple[int, ...]] = {}
        self._bind_all()

    def _bind_all(self) -> None:
        kinds: tuple[Kind, ...] = ("branch", "commit", "migration")
        for kind in kinds:
            for identifier in self.model.entities(kind):
                if self.model.pk_of(kind, identifier) is None:
                    bind_keys(
                        self.model,
                        kind,
                        identifier,
                        next(self.pks[kind]),
                        uuid.uuid4(),
                        sequential=True,
                    )

    def _try(self, operation: str, *args: Any) -> Predicted | None:
        try:
            result: Predicted = getattr(self.model, operation)(*args)
        except DomainError:
            return None
        self._bind_all()
        return result

    @initialize(target=branches)
    def main(self) -> str:
        return "main"

    @rule(target=branches, name=strategies.branch_names(), source=branches)
    def create_branch(self, name: str, source: str) -> str:
        self._try("create_branch", name, source)
        return name

    @rule(name=branches)
    def delete_branch(self, name: str) -> None:
        self._try("delete_branch", name)

    @rule(name=branches, message=strategies.messages())
    def commit(self, name: str, message: str) -> None:
        self._try("commit", name, message)

    @rule(name=branches, identifier=strategies.migration_identifiers(), data=st.data())
    def apply_migration(self, name: str, identifier: str, data: st.DataObject) -> None:
        branch = self.model.branches.get(name)
        if branch is not None:
            ops = data.draw(strategies.operations(branch.tree))
            self._try("apply_migration", name, identifier, ops)

    @rule(data=st.data())
    def rollback(self, data: st.DataObject) -> None:
        if self.model.migrations:
            self._try(
                "rollback_migration", data.draw(st.sampled_from(sorted(self.model.migrations)))
            )

    @rule(source=branches, into=branches)
    def merge(self, source: str, into: str) -> None:
        self._try("merge", source, into)

    @invariant()
    def trinity_ids_unique_and_stable(self) -> None:
        kinds: tuple[Kind, ...] = ("branch", "commit", "migration")
        for kind in kinds:
            entities = self.model.entities(kind)
            pks = [self.model.pk_of(kind, i) for i in entities]
            assert len(set(pks)) == len(pks), f"{kind} pks not unique"
            for identifier in entities:
                keys = (self.model.pk_of(kind, identifier), self.model.id_of(kind, identifier))
                assert self.keys_seen.setdefault((kind, identifier), keys) == keys

    @invariant()
    def versions_monotone(self) -> None:
        for name, branch in self.model.branches.items():
            version = _version(branch.version)
            assert version >= self.versions_seen.get(name, (0, 0, 0)), name
            self.versions_seen[name] = version
            assert branch.version == self.model.commits[branch.head].version

    @invariant()
    def history_acyclic(self) -> None:
        order = self.model.order
        for identifier, commit in self.model.commits.items():
            for parent in commit.parents:
                assert order[parent] < order[identifier], "a parent is younger than its child"

    @invariant()
    def merge_base_is_lowest_common_ancestor(self) -> None:
        parents = {c: self.model.commits[c].parents for c in self.model.commits}
        heads = sorted({b.head for b in self.model.branches.values()})
        for a, b in itertools.combinations(heads, 2):
            common = merging.ancestors(parents, a) & merging.ancestors(parents, b)
            assert common, "every pair of commits shares the root"
            base = max(common, key=lambda c: self.model.pk_of("commit", c) or 0)
            for other in common - {base}:
                assert base not in merging.ancestors(parents, other) or other == base


TestModelInvariants = ModelInvariants.TestCase
TestModelInvariants.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)


def test_errors_do_not_change_the_model() -> None:
    model = Model.initial()
    before = repr(model)
    with pytest.raises(DomainError) as info:
        model.delete_branch("main")
    assert info.value.outcome == ("42501", "protected_branch")
    assert repr(model) == before
