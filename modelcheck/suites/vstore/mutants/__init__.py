"""The mutant catalogue: deliberately wrong variants of the reference target.

Each mutant replaces one PL/pgSQL function of the reference with a copy carrying one
realistic bug (a missing lock, an id from ``max()+1``, a hash that ignores column
order ...). ``python -m modelcheck mutants`` runs the machines against every one and
reports which machine killed it, how fast and how short the shrunk trace is
(docs/mutants.md).
"""

from __future__ import annotations


def catalogue_paths() -> dict[str, str]:
    """Every mutant's target name -> ``module:attr`` (what ``resolve_target`` looks up)."""
    from modelcheck.suites.vstore.mutants.catalogue import CATALOGUE

    return {info.name: info.path for info in CATALOGUE}


__all__ = ["catalogue_paths"]
