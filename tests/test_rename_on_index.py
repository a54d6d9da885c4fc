"""Regression (soak, FaultMachine seed 120120780 on the correct reference): a
``rename_column`` whose table names an index.

Postgres accepts ``ALTER TABLE <index> RENAME COLUMN``: it renames the index's own
column name, which no tree shows. The model refused it (42809) like every other table
operation on an index, so the machines raised a false alarm on the reference. The
domain now says the store refuses it too (docs/domain.md); both targets and the model
must agree, and the failed migration must leave nothing.
"""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
import pytest

from modelcheck.machine import installer_for
from modelcheck.spec import OperationError
from modelcheck.suites.vstore.reference.target import ReferenceTarget
from modelcheck.suites.vstore.spec import VSTORE
from modelcheck.suites.vstore.sqlalchemy_target.target import SQLAlchemyTarget
from modelcheck.target import observe

pytestmark = pytest.mark.postgres

_TABLE = {
    "op": "create_table",
    "table": "t",
    "columns": [
        {"name": "a", "type": "integer", "nullable": True, "default": None},
        {"name": "b", "type": "integer", "nullable": True, "default": None},
    ],
}
_INDEX = {"op": "create_index", "index": "i", "table": "t", "columns": ["a"], "unique": False}
_RENAME = {"op": "rename_column", "table": "i", "column": "a", "new_name": "z"}
_CALLS = [
    ("0001_t", [_TABLE, _INDEX]),
    ("0002_rename_index_column", [_RENAME]),
]


def _model_outcomes() -> list[Any]:
    model = VSTORE.initial_model()
    outcomes: list[Any] = []
    for identifier, operations in _CALLS:
        try:
            VSTORE.apply(model, "apply_migration", ("main", identifier, operations))
            outcomes.append("ok")
        except OperationError as error:
            outcomes.append(error.outcome)
    return outcomes


@pytest.mark.parametrize("target", [ReferenceTarget(), SQLAlchemyTarget()], ids=lambda t: t.name)
def test_rename_column_on_an_index_is_refused_by_model_and_target(
    empty_dsn: str, target: Any
) -> None:
    with psycopg.connect(empty_dsn, autocommit=True) as conn:
        installer_for(target)(conn)

    async def scenario() -> tuple[list[Any], int]:
        outcomes: list[Any] = []
        async with await psycopg.AsyncConnection.connect(empty_dsn, autocommit=True) as conn:
            for identifier, operations in _CALLS:
                try:
                    await target.apply_migration(conn, "main", identifier, operations)
                    outcomes.append("ok")
                except OperationError as error:
                    outcomes.append(error.outcome)
                except psycopg.Error as error:
                    outcomes.append(VSTORE.classify(error).outcome)
            state = await observe(VSTORE, target, conn, full=True)
        return outcomes, len(state.migrations)

    outcomes, migrations = asyncio.run(scenario())
    assert outcomes == _model_outcomes()
    assert outcomes[1] == ("42809", "ddl")
    assert migrations == 1, "the refused migration left no record"
