"""The reference target: the versioned schema store in SQL and PL/pgSQL (docs/domain.md)."""

from modelcheck.suites.vstore.reference.target import ReferenceTarget

__all__ = ["ReferenceTarget"]
