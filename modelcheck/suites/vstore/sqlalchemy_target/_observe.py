"""The target's own observer: its own tables and the live catalog, as one Snapshot.

One statement, one round trip: ``sa_store``'s rows as one JSON document in the shape
:func:`modelcheck.suites.vstore.snapshot.from_document` reads, plus (``full`` only) every
working tree from the catalog by the framework's ``modelcheck_observe.trees`` function,
which :func:`install` copies from the suite's ``observer.sql`` (that function alone: the
default ``snapshot()`` reads ``vstore.*``, which this target does not have). It reads
plain tables and the catalog only, never the target's Python logic.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any, Final

import psycopg

from modelcheck.suites.vstore.snapshot import Snapshot, from_document

_TREES_START: Final = "CREATE OR REPLACE FUNCTION modelcheck_observe.trees("
_TREES_END: Final = "\n$$;"

#: ``%(full)s``: read the working trees too (only at quiet points: the catalog look-ups
#: of a table under another session's open DDL would wait for its lock).
OBSERVE: Final = b"""
SELECT jsonb_build_object(
    'branches', coalesce((
        SELECT jsonb_agg(jsonb_build_object(
                   'pk', b.branch_no, 'id', b.public_id, 'identifier', b.name,
                   'parent', f.name, 'head', h.ident, 'status', b.state,
                   'version', b.semver, 'schema_name', b.workspace,
                   'tree_hash', b.recorded_hash))
          FROM sa_store.branch b
          LEFT JOIN sa_store.branch f ON f.branch_no = b.forked_from
          LEFT JOIN sa_store.revision h ON h.revision_no = b.head_revision), '[]'),
    'commits', coalesce((
        SELECT jsonb_agg(jsonb_build_object(
                   'pk', r.revision_no, 'id', r.public_id, 'identifier', r.ident,
                   'branch', b.name, 'message', r.note, 'schema_hash', r.tree_digest,
                   'version', r.semver,
                   -- LEFT JOIN: a parent that is no revision shows as null, not as nothing.
                   'parents', coalesce((
                       SELECT jsonb_agg(p.ident ORDER BY u.n)
                         FROM unnest(r.parents) WITH ORDINALITY AS u(no, n)
                         LEFT JOIN sa_store.revision p ON p.revision_no = u.no), '[]')))
          FROM sa_store.revision r
          LEFT JOIN sa_store.branch b ON b.branch_no = r.branch_no), '[]'),
    'migrations', coalesce((
        SELECT jsonb_agg(jsonb_build_object(
                   'pk', m.change_no, 'id', m.public_id, 'identifier', m.ident,
                   'branch', b.name, 'checksum', m.checksum, 'status', m.state))
          FROM sa_store.schema_change m
          LEFT JOIN sa_store.branch b ON b.branch_no = m.branch_no), '[]'),
    'trees', CASE WHEN %(full)s
                  THEN modelcheck_observe.trees(%(excluded)s::text[], true)
                  ELSE '{}'::jsonb END)::text
"""


def trees_function_sql() -> str:
    """``CREATE SCHEMA modelcheck_observe`` and the catalog reader ``trees()``, nothing else."""
    text = resources.files("modelcheck.suites.vstore").joinpath("observer.sql").read_text()
    start = text.index(_TREES_START)
    end = text.index(_TREES_END, start) + len(_TREES_END)
    return "CREATE SCHEMA IF NOT EXISTS modelcheck_observe;\n" + text[start:end]


def install(conn: psycopg.Connection[Any]) -> None:
    conn.execute(trees_function_sql().encode())


async def observe(
    conn: psycopg.AsyncConnection[Any], store_schemas: tuple[str, ...], *, full: bool
) -> Snapshot:
    """The committed state; ``full=False`` reads no working tree (``trees`` is empty)."""
    cursor = await conn.execute(
        OBSERVE, {"full": full, "excluded": list(store_schemas)}, prepare=True
    )
    row = await cursor.fetchone()
    assert row is not None
    return from_document(json.loads(row[0]))
