"""The built-in suite: the versioned schema store of docs/domain.md.

Its model (``domain/``), its reference target in PL/pgSQL (``reference/``), a second
target on its own table layout (``sqlalchemy_target/``), its rules, strategies,
observer, faults, mutants and stress checker.
"""
