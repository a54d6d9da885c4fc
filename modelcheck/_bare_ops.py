"""The physical limit of a machine's workload: the same operations, bare.

``nox -s bench`` runs a machine, keeps the operation sequence each example sent to the
target, and replays those sequences here with nothing else: no model, no snapshot, no
comparison, no Hypothesis. Each example still gets its own clean database and
connection, through the sequential machines' cheapest client path (the blocking
:class:`~modelcheck._postgres.blocking.BlockingAsyncConnection`), so the ratio of
the two rates is what checking costs on top of the work itself.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import attrs
import psycopg

from modelcheck._postgres.blocking import BlockingAsyncConnection
from modelcheck._postgres.isolation import DatabasePool
from modelcheck.spec import OperationError
from modelcheck.target import Target

#: One example's calls, in order: (operation, arguments).
Program = Sequence[tuple[str, tuple[Any, ...]]]


@attrs.frozen
class BareRun:
    """Seconds spent on one replay of every program."""

    steps: int
    #: Steps that ended in an error (compared by the machine, only counted here).
    errors: int
    total_s: float
    #: Operations only, without each example's database checkout and connection.
    operations_s: float

    @property
    def rate(self) -> float:
        return self.steps / self.total_s if self.total_s else 0.0

    @property
    def operations_rate(self) -> float:
        return self.steps / self.operations_s if self.operations_s else 0.0


def replay_bare(
    programs: Sequence[Program], pool: DatabasePool, target: Target, options: str
) -> BareRun:
    """Run every program on a fresh database; errors are outcomes, as in the machine."""
    loop = asyncio.new_event_loop()
    steps, errors, operations = 0, 0, 0.0
    started = time.perf_counter()
    try:
        for program in programs:
            with pool.database() as db:
                conn = loop.run_until_complete(
                    BlockingAsyncConnection.connect(db.dsn, autocommit=True, options=options)
                )
                try:
                    t0 = time.perf_counter()
                    for operation, args in program:
                        try:
                            loop.run_until_complete(getattr(target, operation)(conn, *args))
                        except (OperationError, psycopg.Error):
                            errors += 1  # this step's outcome; the machine compared it
                        steps += 1
                    operations += time.perf_counter() - t0
                finally:
                    loop.run_until_complete(conn.close())
    finally:
        loop.close()
    return BareRun(steps, errors, time.perf_counter() - started, operations)


__all__ = ["BareRun", "Program", "replay_bare"]
