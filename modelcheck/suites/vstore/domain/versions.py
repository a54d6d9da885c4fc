"""Semantic versions: what a change between two trees bumps (docs/domain.md)."""

from __future__ import annotations

from typing import Literal

from modelcheck.suites.vstore.domain.tree import Tree

Bump = Literal["major", "minor", "patch"]


def classify(old: Tree, new: Tree) -> Bump:
    """Removal or type change → major; else addition → minor; else patch."""
    added = False
    for name, table in old.tables.items():
        other = new.tables.get(name)
        if other is None:
            return "major"
        for column in table.columns:
            counterpart = other.column(column.name)
            if counterpart is None or counterpart.type != column.type:
                return "major"
        if len(other.columns) > len(table.columns) or any(
            table.column(c.name) is None for c in other.columns
        ):
            added = True
    for name, index in old.indexes.items():
        if new.indexes.get(name) != index:
            return "major"
    if set(new.tables) - set(old.tables) or set(new.indexes) - set(old.indexes):
        added = True
    return "minor" if added else "patch"


def bump(version: str, change: Bump) -> str:
    major, minor, patch = (int(p) for p in version.split("."))
    if change == "major":
        return f"{major + 1}.0.0"
    if change == "minor":
        return f"{major}.{minor + 1}.0"
    return f"{major}.{minor}.{patch + 1}"
