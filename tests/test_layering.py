"""The dependency rule the layout shows: suites import the engine, never the reverse.

Engine modules (everything in ``modelcheck/`` outside ``suites/``) may name a suite
only in the places listed in ``ALLOWED``, each with its reason; and the engine's
imports have no cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Final

PACKAGE = Path(__file__).parents[1] / "modelcheck"

#: Engine modules allowed to import a suite, and why.
ALLOWED: Final = {
    # The public facade re-exports the built-in suite's names for its users.
    "modelcheck/__init__.py",
    # The registry: built-in target names and the default spec of legacy adapters.
    "modelcheck/_targets.py",
    # CLI subcommands that only the built-in suite has (stress, mutants).
    "modelcheck/_cli/stress.py",
    "modelcheck/_cli/mutants.py",
}


def _engine_modules() -> list[Path]:
    return [p for p in PACKAGE.rglob("*.py") if "suites" not in p.relative_to(PACKAGE).parts]


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, at run time (``if TYPE_CHECKING:`` blocks are types)."""
    names: set[str] = set()
    tree = ast.parse(path.read_text())
    typing_only = {
        id(child)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"
        for child in ast.walk(node)
    }
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and node.value.startswith("modelcheck.suites")
        ):
            names.add(node.value.partition(":")[0])  # import paths given as text
    return {n for n in names if n.startswith("modelcheck")}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_no_engine_module_imports_a_suite() -> None:
    offenders = {
        str(p.relative_to(PACKAGE.parent)): sorted(
            n for n in _imports(p) if n.startswith("modelcheck.suites")
        )
        for p in _engine_modules()
    }
    offenders = {k: v for k, v in offenders.items() if v and k not in ALLOWED}
    assert offenders == {}


def test_the_engine_import_graph_has_no_cycle() -> None:
    modules = {_module_name(p): p for p in _engine_modules()}
    graph = {
        name: {m for m in _imports(path) if m in modules and m not in (name, "modelcheck")}
        for name, path in modules.items()
    }
    done: set[str] = set()

    def visit(node: str, stack: list[str]) -> None:
        if node in stack:
            raise AssertionError(
                f"import cycle: {' -> '.join([*stack[stack.index(node) :], node])}"
            )
        if node in done:
            return
        for nxt in sorted(graph[node]):
            visit(nxt, [*stack, node])
        done.add(node)

    for name in sorted(graph):
        visit(name, [])


def test_the_rule_would_catch_an_offender(tmp_path: Path) -> None:
    module = tmp_path / "bad.py"
    module.write_text("from modelcheck.suites.vstore.rules import BranchRules\n")
    assert _imports(module) == {"modelcheck.suites.vstore.rules"}
