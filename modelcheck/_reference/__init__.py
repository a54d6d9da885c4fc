"""The reference target: the versioned schema store in SQL and PL/pgSQL (docs/domain.md)."""

from modelcheck._reference.target import ReferenceTarget

__all__ = ["ReferenceTarget"]
