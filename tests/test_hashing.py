"""Schema hashes, commit identifiers and checksums: Python and the SQL side agree.

Trees are built with real DDL in a throwaway schema and hashed by
``vstore.tree_hash`` (modelcheck/suites/vstore/reference/sql/10_canonical.sql); the model hashes
the same tree as a value. Jsonb texts are compared with ``::jsonb::text`` itself.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from _fresh_db import fresh_dsn
from hypothesis import given, settings
from hypothesis import strategies as st
from psycopg import sql

from modelcheck.suites.vstore.domain.errors import DomainError
from modelcheck.suites.vstore.domain.hashing import (
    Json,
    commit_identifier,
    jsonb_text,
    operations_checksum,
    tree_canonical_text,
    tree_hash,
)
from modelcheck.suites.vstore.domain.tree import Column, Index, Table, Tree
from modelcheck.suites.vstore.domain.types import SqlType, parse_type, render_default
from modelcheck.suites.vstore.domain.values import sql_types, values_for

CANONICAL_SQL = (
    Path(__file__).parents[1] / "modelcheck/suites/vstore/reference/sql/10_canonical.sql"
)
SCHEMA = "wt 1"
# One connection serves many examples; DDL round trips make timing noisy.
SETTINGS = settings(max_examples=120, deadline=None)

Conn = psycopg.Connection[tuple[str]]

RESERVED = ["select", "table", "order", "User", "GROUP", "from", "index", "c"]
names = st.one_of(
    st.sampled_from(RESERVED),
    st.text("abAB _.'\"-é日🙂$0", min_size=1, max_size=12),
    st.text("x", min_size=63, max_size=63),
    st.text("é", min_size=31, max_size=31),
).filter(lambda s: len(s.encode()) <= 63)

unicode_text = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"))


@pytest.fixture
def conn(request: pytest.FixtureRequest) -> Iterator[Conn]:
    for dsn in fresh_dsn(request):
        with psycopg.connect(dsn) as connection:
            connection.execute(sql.SQL(CANONICAL_SQL.read_text()))
            connection.commit()
            yield connection


@st.composite
def columns(draw: st.DrawFn) -> tuple[Column, str | None]:
    """A column as the model holds it, and the default's input text for the DDL."""
    typ: SqlType = draw(sql_types())
    text = draw(st.none() | values_for(typ))
    default = None
    if text is not None:
        try:
            default = render_default(text, typ)
        except DomainError:
            text = None
    return Column(draw(names), str(typ), draw(st.booleans()), default), text


@st.composite
def trees(draw: st.DrawFn) -> tuple[Tree, dict[str, str | None]]:
    """A tree, and the default input texts keyed by table and column name."""
    relations = draw(st.lists(names, min_size=0, max_size=6, unique=True))
    tables: dict[str, Table] = {}
    indexes: dict[str, Index] = {}
    texts: dict[str, str | None] = {}
    n_tables = draw(st.integers(0, min(3, len(relations))))
    for name in relations[:n_tables]:
        cols = draw(st.lists(columns(), min_size=1, max_size=4, unique_by=lambda c: c[0].name))
        tables[name] = Table(name, tuple(c for c, _ in cols))
        texts.update({json.dumps([name, c.name]): text for c, text in cols})
    for index_name in relations[n_tables:]:
        if not tables:
            break
        table = tables[draw(st.sampled_from(sorted(tables)))]
        key = draw(
            st.lists(
                st.sampled_from([c.name for c in table.columns]),
                min_size=1,
                max_size=3,
                unique=True,
            )
        )
        indexes[index_name] = Index(index_name, table.name, tuple(key), draw(st.booleans()))
    return Tree(tables, indexes), texts


def _build(conn: Conn, tree: Tree, texts: dict[str, str | None]) -> None:
    schema = sql.Identifier(SCHEMA)
    conn.execute(sql.SQL("CREATE SCHEMA {}").format(schema))
    for table in tree.tables.values():
        defs = []
        for c in table.columns:
            text = texts[json.dumps([table.name, c.name])]
            parts = [sql.Identifier(c.name), sql.SQL(str(parse_type(c.type)))]
            if not c.nullable:
                parts.append(sql.SQL("NOT NULL"))
            if text is not None:
                parts.append(sql.SQL("DEFAULT {}").format(sql.Literal(text)))
            defs.append(sql.SQL(" ").join(parts))
        conn.execute(
            sql.SQL("CREATE TABLE {}.{} ({})").format(
                schema, sql.Identifier(table.name), sql.SQL(", ").join(defs)
            )
        )
    for index in tree.indexes.values():
        conn.execute(
            sql.SQL("CREATE {} INDEX {} ON {}.{} ({})").format(
                sql.SQL("UNIQUE") if index.unique else sql.SQL(""),
                sql.Identifier(index.name),
                schema,
                sql.Identifier(index.table),
                sql.SQL(", ").join(map(sql.Identifier, index.columns)),
            )
        )


def _scalar(conn: Conn, query: sql.Composed | sql.SQL, *params: object) -> str:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return row[0]


@pytest.mark.postgres
def test_tree_hash_matches_the_live_catalog(conn: Conn) -> None:
    @SETTINGS
    @given(trees())
    def check(generated: tuple[Tree, dict[str, str | None]]) -> None:
        tree, texts = generated
        with conn.transaction(force_rollback=True):
            _build(conn, tree, texts)
            canonical = _scalar(conn, sql.SQL("SELECT vstore.tree_canonical_text(%s)"), SCHEMA)
            digest = _scalar(conn, sql.SQL("SELECT vstore.tree_hash(%s)"), SCHEMA)
        assert tree_canonical_text(tree) == canonical
        assert tree_hash(tree) == digest

    check()


def _structure(tree: Tree) -> object:
    return ({n: t.columns for n, t in tree.tables.items()}, dict(tree.indexes))


@given(trees(), trees())
def test_tree_hash_separates_different_structures(
    a: tuple[Tree, object], b: tuple[Tree, object]
) -> None:
    assert (tree_hash(a[0]) == tree_hash(b[0])) == (_structure(a[0]) == _structure(b[0]))


BASE = Tree(
    {
        "T": Table("T", (Column("a", "integer", True, "5"), Column("b", "numeric(5,2)", False))),
        "u": Table("u", (Column("x", "text[]", True),), rows=(("{a}",),)),
    },
    {"i": Index("i", "T", ("a", "b"), False)},
)


@pytest.mark.parametrize(
    "changed",
    [
        Tree({**BASE.tables, "T": Table("T", BASE.tables["T"].columns[::-1])}, BASE.indexes),
        Tree(
            {
                **BASE.tables,
                "T": Table("T", (BASE.tables["T"].columns[0], Column("b", "numeric(5,1)", False))),
            },
            BASE.indexes,
        ),
        Tree(
            {
                **BASE.tables,
                "T": Table("T", (Column("a", "integer", True, "6"), BASE.tables["T"].columns[1])),
            },
            BASE.indexes,
        ),
        Tree(
            {
                **BASE.tables,
                "T": Table("T", (Column("A", "integer", True, "5"), BASE.tables["T"].columns[1])),
            },
            {"i": Index("i", "T", ("A", "b"), False)},
        ),
        Tree(dict(BASE.tables), {}),
        Tree(dict(BASE.tables), {"i": Index("i", "T", ("b", "a"), False)}),
        Tree(dict(BASE.tables), {"i": Index("i", "T", ("a", "b"), True)}),
        Tree(dict(BASE.tables), {"I": Index("I", "T", ("a", "b"), False)}),
        Tree({"T": BASE.tables["T"]}, BASE.indexes),
    ],
    ids=[
        "swap",
        "typmod",
        "default",
        "case",
        "drop-index",
        "index-order",
        "unique",
        "index-case",
        "drop-table",
    ],
)
def test_any_structural_change_changes_the_hash(changed: Tree) -> None:
    assert tree_hash(changed) != tree_hash(BASE)


def test_rows_are_not_hashed_and_the_empty_tree_hashes_the_empty_string() -> None:
    assert tree_hash(BASE) == tree_hash(BASE.without_rows())
    empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert tree_hash(Tree()) == empty


@pytest.mark.postgres
def test_commit_identifier_matches_sql(conn: Conn) -> None:
    @SETTINGS
    @given(unicode_text, st.lists(unicode_text, max_size=2), unicode_text, unicode_text)
    def check(branch: str, parents: list[str], schema_hash: str, message: str) -> None:
        padded: list[str | None] = [*parents, None, None]
        got = _scalar(
            conn,
            sql.SQL("SELECT vstore.commit_identifier(%s, %s, %s, %s, %s)"),
            branch,
            padded[0],
            padded[1],
            schema_hash,
            message,
        )
        assert commit_identifier(branch, parents, schema_hash, message) == got
        assert len(got) == 17

    check()


json_values: st.SearchStrategy[Json] = st.recursive(
    st.none() | st.booleans() | st.integers() | st.integers(-(10**30), 10**30) | unicode_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(unicode_text, inner, max_size=4),
    max_leaves=12,
)


@pytest.mark.postgres
def test_jsonb_text_and_checksum_match_sql(conn: Conn) -> None:
    @SETTINGS
    @given(st.lists(json_values, min_size=1, max_size=3))
    def check(operations: list[Json]) -> None:
        encoded = json.dumps(operations, ensure_ascii=False)
        text = _scalar(conn, sql.SQL("SELECT %s::jsonb::text"), encoded)
        checksum = _scalar(conn, sql.SQL("SELECT vstore.operations_checksum(%s::jsonb)"), encoded)
        assert jsonb_text(operations) == text
        assert operations_checksum(operations) == checksum

    check()


def test_jsonb_text_examples() -> None:
    ops: Json = [{"table": "t", "op": "drop_table", "é": '\n\x01"\\', "n": [1, True, None]}]
    expected = (
        '[{"n": [1, true, null], "op": "drop_table", "é": "\\n\\u0001\\"\\\\", "table": "t"}]'
    )
    assert jsonb_text(ops) == expected
    assert jsonb_text({}) == "{}"
    assert jsonb_text([]) == "[]"
    with pytest.raises(TypeError):
        jsonb_text(1.5)  # type: ignore[arg-type]
