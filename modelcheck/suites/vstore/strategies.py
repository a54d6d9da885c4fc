"""Hypothesis strategies for the domain's hostile inputs.

Names come from small pools so that collisions (duplicate tables, existing branches)
happen often, mixed with generated text: quotes, spaces, dots, Unicode, mixed case,
reserved words and 63/64-byte edge lengths. Migration operations are drawn against the
branch's current tree so most succeed and the machine goes deep, while a fraction
target missing objects, bad values and casts that really fail.

At the edges (built by :mod:`modelcheck.edges`): names and messages one unit either
side of their limits (63 bytes, 4096 characters) made of multi-byte characters,
combining marks and whitespace; look-up keys that are a case, width, Unicode-form or
whitespace variant of an existing key (``DomainMachine.look_up``), which the spec says name
nothing (docs/domain.md, "Names are exact"); re-applied operations that differ from
the applied ones only in order, repetition or case (:func:`operations_variant`).
"""

from __future__ import annotations

from typing import Any, Final

from hypothesis import strategies as st

from modelcheck import edges
from modelcheck.suites.vstore.domain import ddl, validation, values
from modelcheck.suites.vstore.domain.errors import DomainError
from modelcheck.suites.vstore.domain.tree import Tree
from modelcheck.suites.vstore.domain.types import parse_type

HOSTILE_NAMES = (
    "feat",
    "Feat",
    "select",
    "with space",
    "dot.ted",
    'qu"ote',
    "it's",
    "ünïcødé",
    "Ångström",
    "🌿 branch",
    " lead",
    "trail ",
    "x" * 63,
    "é" * 31 + "x",  # 63 bytes
)
TOO_LONG = ("y" * 64, "é" * 32)  # 64 bytes: name_too_long
#: One-character names of whitespace: a name of spaces is a name (only '' is empty).
BLANK_NAMES: Final = (" ", "\t", "\u3000", "\u200b")


def branch_names() -> st.SearchStrategy[str]:
    """Branch names: mostly valid and often colliding, sometimes empty, too long or NUL,
    sometimes one byte either side of the limit."""
    return st.one_of(
        st.sampled_from(HOSTILE_NAMES),
        st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=12),
        st.sampled_from(("", *TOO_LONG, "nul\x00byte")),
        # 62, 63 and 64 bytes (the limit is bytes, not characters), wrapped in
        # whitespace, all spaces, or ending in a character that straddles the limit.
        edges.texts_around(validation.MAX_NAME_BYTES, "bytes"),
        st.sampled_from(BLANK_NAMES),
    )


def messages() -> st.SearchStrategy[str]:
    """Commit messages: any storable text, emoji, spaces; sometimes NUL or over 4096,
    sometimes one character either side of the limit."""
    return st.one_of(
        st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=40),
        st.sampled_from(("", "  padded  ", "emoji 🎉✨", "multi\nline\r\n", "\t")),
        edges.named_choice(("a" * 4096, "b" * 4097, "nul\x00inside"), "TOO_LONG_MESSAGES"),
        # 4095, 4096 and 4097 characters (not bytes), wrapped in whitespace or made of
        # multi-byte characters and combining marks.
        edges.texts_around(validation.MAX_MESSAGE_CHARS, "chars"),
    )


#: Non-ASCII names with precomposed letters: they have every kind of variant.
UNUSUAL_NAMES: Final = ("ünï", "Ångström", "café")


_OBJECT_NAMES = ("users", "Users", "order", "a.b", 'q"t', "ñame", "t" * 63)
_COLUMN_NAMES = ("id", "Id", "email", "select", "two words", "ü", "c" * 63)
_INDEX_NAMES = ("idx", "Idx", "idx one", "users")


def migration_identifiers() -> st.SearchStrategy[str]:
    """Mostly fresh valid identifiers, some reused, some malformed."""
    valid = st.builds(
        lambda n, word: f"{n:04d}_{word}",
        st.integers(0, 30),
        st.sampled_from(("add_users", "drop_email", "alter", "index", "seed")),
    )
    return st.one_of(
        valid,
        st.sampled_from(("", "1_bad", "0001_Upper", "0001_" + "x" * 60)),
        edges.named_choice(IDENTIFIER_EDGES, "IDENTIFIER_EDGES"),
    )


#: Identifiers at the edges of ``^[0-9]{4}_[a-z][a-z0-9_]*$`` and 63 bytes: trailing
#: whitespace or newline (``$`` is the end of the text), fullwidth digits, a confusable
#: letter, 63 and 64 bytes (a multi-byte last character is name_too_long at 64 bytes,
#: invalid_name at 63).
IDENTIFIER_EDGES: Final = (
    "0001_add_users ",
    " 0001_add_users",
    "0001_add_users\n",
    "0001_ADD_USERS",
    "\uff10\uff10\uff10\uff11_add_users",
    "0001_\u0430dd_users"  # a Cyrillic a,
    "0001_" + "x" * 58,
    "0001_" + "x" * 59,
    "0001_" + "x" * 56 + "é",
    "0001_" + "x" * 57 + "é",
)


def _column_spec(draw: st.DrawFn, name: str | None = None) -> dict[str, Any]:
    typ = draw(values.sql_types())
    default = draw(st.one_of(st.none(), values.values_for(typ))) if draw(st.booleans()) else None
    return {
        "name": name if name is not None else draw(st.sampled_from(_COLUMN_NAMES)),
        "type": str(typ),
        "nullable": draw(st.booleans()),
        "default": default,
    }


def _rarely(draw: st.DrawFn) -> bool:
    """True about one time in eight (Hypothesis biases integers towards 0, not booleans)."""
    return draw(st.booleans()) and draw(st.booleans()) and draw(st.booleans())


def _existing(draw: st.DrawFn, names: list[str], pool: tuple[str, ...]) -> str:
    """Usually an existing name (so the operation can succeed), sometimes a pool name."""
    if names and not _rarely(draw):
        return draw(st.sampled_from(sorted(names)))
    return draw(st.sampled_from(pool))


def _row(draw: st.DrawFn, tree: Tree, table: str) -> list[str | None]:
    found = tree.tables.get(table)
    if found is None:
        return [draw(values.any_text_values())]
    row: list[str | None] = []
    for column in found.columns:
        if _rarely(draw):
            row.append(draw(st.one_of(st.none(), values.any_text_values())))
        else:
            row.append(draw(values.values_for(parse_type(column.type))))
    return row


@st.composite
def operation(draw: st.DrawFn, tree: Tree) -> dict[str, Any]:
    """One migration operation aimed at ``tree``."""
    tables = list(tree.tables)
    kind = draw(
        st.sampled_from(
            (
                "create_table",
                "create_table",
                "add_column",
                "add_column",
                "insert_rows",
                "insert_rows",
                "alter_column_type",
                "alter_column_type",
                "create_index",
                "drop_column",
                "rename_column",
                "drop_table",
                "drop_index",
            )
        )
    )
    if kind == "drop_index" and not tree.indexes and not _rarely(draw):
        kind = "create_index"
    if kind == "create_table" or not tables:
        names = draw(st.lists(st.sampled_from(_COLUMN_NAMES), min_size=1, max_size=3, unique=True))
        if _rarely(draw):
            names.append(names[0])  # duplicate column: 42701
        columns = [_column_spec(draw, name) for name in names]
        fresh = [n for n in _OBJECT_NAMES if n not in tree.tables and n not in tree.indexes]
        pool = _OBJECT_NAMES if _rarely(draw) or not fresh else tuple(fresh)
        return {"op": "create_table", "table": draw(st.sampled_from(pool)), "columns": columns}
    table = _existing(draw, tables, _OBJECT_NAMES)
    found = tree.tables.get(table)
    column_names = [c.name for c in found.columns] if found else []
    column = _existing(draw, column_names, _COLUMN_NAMES)
    if kind == "add_column":
        return {"op": "add_column", "table": table, "column": _column_spec(draw)}
    if kind == "insert_rows":
        count = draw(st.integers(1, 3))
        return {
            "op": "insert_rows",
            "table": table,
            "rows": [_row(draw, tree, table) for _ in range(count)],
        }
    if kind == "alter_column_type":
        return {
            "op": "alter_column_type",
            "table": table,
            "column": column,
            "type": str(draw(values.sql_types())),
        }
    if kind == "create_index":
        chosen = draw(st.lists(st.just(column), min_size=1, max_size=1))
        if len(column_names) > 1 and draw(st.booleans()):
            chosen.append(draw(st.sampled_from(column_names)))
        return {
            "op": "create_index",
            "index": draw(st.sampled_from(_INDEX_NAMES)),
            "table": table,
            "columns": chosen,
            "unique": draw(st.booleans()),
        }
    if kind == "drop_column":
        return {"op": "drop_column", "table": table, "column": column}
    if kind == "rename_column":
        return {
            "op": "rename_column",
            "table": table,
            "column": column,
            "new_name": draw(st.sampled_from(_COLUMN_NAMES)),
        }
    if kind == "drop_table":
        return {"op": "drop_table", "table": table}
    index = _existing(draw, list(tree.indexes), _INDEX_NAMES)
    return {"op": "drop_index", "index": index}


@st.composite
def operations(draw: st.DrawFn, tree: Tree, max_size: int = 4) -> list[dict[str, Any]]:
    """A migration's operations, each drawn against the tree the previous ones produce."""
    ops: list[dict[str, Any]] = []
    for _ in range(draw(st.integers(1, max_size))):
        op = draw(operation(tree))
        ops.append(op)
        try:
            tree = ddl.APPLY[op["op"]](tree, op)
        except DomainError:
            break  # the migration fails here; later operations never run
    if _rarely(draw) and _rarely(draw):
        ops.append(draw(st.sampled_from(_MALFORMED)))
    return ops


_MALFORMED: tuple[dict[str, Any], ...] = (
    {"op": "create_table", "table": "t", "columns": []},
    {"op": "explode", "table": "t"},
    {"op": "drop_table"},
    {
        "op": "add_column",
        "table": "t",
        "column": {"name": "c", "type": "int", "nullable": True, "default": None},
    },
    {"op": "drop_table", "table": ""},
    {"op": "drop_table", "table": "z" * 64},
)


@st.composite
def operations_variant(draw: st.DrawFn, applied: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``applied`` changed only a little: reordered, one operation repeated, a create's
    columns reversed, a table name in another case, an index's uniqueness flipped. The
    checksum covers the exact operations, so any of these is ``checksum_mismatch``
    unless the text comes out the same (then ``migration_exists``)."""
    ops = [dict(op) for op in applied]
    kinds = ["repeat", "case", "unique"]
    if len(ops) > 1:
        kinds += ["reverse", "reverse", "rotate"]
    if any(op.get("op") == "create_table" and len(op.get("columns", ())) > 1 for op in ops):
        kinds.append("columns")
    kind = draw(st.sampled_from(kinds), label="variant")
    if kind == "reverse":
        return ops[::-1]
    if kind == "rotate":
        return ops[1:] + ops[:1]
    if kind == "repeat":
        return [*ops, ops[-1]]
    if kind == "columns":
        for op in ops:
            if op.get("op") == "create_table" and len(op["columns"]) > 1:
                op["columns"] = op["columns"][::-1]
                break
        return ops
    for op in ops:
        if kind == "case" and isinstance(op.get("table"), str):
            op["table"] = op["table"].swapcase()
            return ops
        if kind == "unique" and isinstance(op.get("unique"), bool):
            op["unique"] = not op["unique"]
            return ops
    return [*ops, ops[-1]]
