"""Domain errors: one stable kind and one SQLSTATE per failure, shared by every implementation.

Both the model and every target raise :class:`DomainError`; the differential machines
compare ``(sqlstate, kind)`` pairs, never message text.
"""

from __future__ import annotations

from typing import Final

from modelcheck.spec import LEGAL_ABORTS, POSTGRES_ERROR, OperationError

#: kind -> SQLSTATE. The single source of truth (docs/domain.md, "Error contract").
ERROR_KINDS: Final[dict[str, str]] = {
    "nul_in_text": "22021",
    "invalid_name": "22023",
    "name_too_long": "42622",
    "message_too_long": "22001",
    "invalid_operation": "22023",
    "branch_not_found": "42704",
    "branch_deleted": "55000",
    "branch_exists": "42710",
    "protected_branch": "42501",
    "schema_drift": "55000",
    "migration_exists": "42710",
    "checksum_mismatch": "22000",
    "migration_not_found": "42704",
    "migration_not_applied": "55000",
    "not_latest_migration": "55000",
    "column_has_default": "0A000",
    "uncommitted_changes": "55000",
    "merge_conflict": "23000",
    "not_found": "42704",
}

#: The kind of every error that Postgres itself raised (DDL, casts, constraints).
DDL: Final = POSTGRES_ERROR

#: SQLSTATEs that are legal outcomes of concurrency rather than domain errors.
TRANSACTION_ABORTS: Final = LEGAL_ABORTS


class DomainError(OperationError):
    """An operation failed the way the specification says it must.

    ``kind`` is one of :data:`ERROR_KINDS` (SQLSTATE fixed by the table) or ``"ddl"``
    (SQLSTATE chosen by Postgres) or a :data:`TRANSACTION_ABORTS` name.
    """

    def __init__(self, kind: str, sqlstate: str | None = None, message: str = "") -> None:
        if sqlstate is None:
            if kind not in ERROR_KINDS:
                raise ValueError(f"unknown domain error kind {kind!r}; pass its sqlstate")
            sqlstate = ERROR_KINDS[kind]
        super().__init__(kind, sqlstate, message)


def ddl_error(sqlstate: str, message: str = "") -> DomainError:
    """An error Postgres raises while running DDL or inserting rows."""
    return DomainError(DDL, sqlstate, message)
