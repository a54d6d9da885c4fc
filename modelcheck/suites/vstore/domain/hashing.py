"""Content hashes the model must predict byte for byte (docs/domain.md).

Schema hashes and commit identifiers are computed by Postgres too
(``modelcheck/_reference/sql/10_canonical.sql``); migration checksums hash Postgres'
``jsonb::text``, which :func:`jsonb_text` reproduces for JSON without floats.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

from modelcheck.suites.vstore.domain.tree import Tree

#: What :func:`jsonb_text` accepts: no floats, whose numeric printing is not modelled.
Json = None | bool | int | str | Sequence["Json"] | Mapping[str, "Json"]


def f(s: str) -> str:
    """Length-prefix (in UTF-8 bytes) so concatenations cannot be ambiguous."""
    return f"{len(s.encode())}:{s}"


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def tree_canonical_text(tree: Tree) -> str:
    """The text the schema hash is taken over; rows are not part of it."""
    lines: list[str] = []
    for name in sorted(tree.tables, key=str.encode):  # COLLATE "C" == UTF-8 byte order
        table = tree.tables[name]
        lines.append(f"T {f(table.name)}\n")
        for c in table.columns:
            nullable = "Y" if c.nullable else "N"
            lines.append(f"C {f(c.name)} {f(c.type)} {nullable} {f(c.default or '')}\n")
        for index in tree.indexes_on(name):
            unique = "U" if index.unique else "-"
            lines.append(f"I {f(index.name)} {unique} {','.join(map(f, index.columns))}\n")
    return "".join(lines)


def tree_hash(tree: Tree) -> str:
    """sha256 hex of the canonical text; the empty tree hashes the empty string."""
    return _sha256(tree_canonical_text(tree))


def commit_identifier(branch: str, parents: Sequence[str], schema_hash: str, message: str) -> str:
    """``'c'`` + 16 hex digits of sha256(f(branch) f(p1) f(p2 or '') f(hash) f(message)).

    The f() pieces are concatenated without separators (the length prefixes delimit).
    """
    if len(parents) > 2:
        raise ValueError(f"a commit has at most two parents, got {len(parents)}")
    first, second = [*parents, "", ""][:2]
    text = f(branch) + f(first) + f(second) + f(schema_hash) + f(message)
    return "c" + _sha256(text)[:16]


def _json_string(s: str) -> str:
    """Postgres' escape_json: short escapes, \\u00xx for other controls, rest verbatim."""
    if "\0" in s:
        raise ValueError("jsonb cannot hold NUL (\\u0000); reject it as nul_in_text first")
    out = ['"']
    for ch in s:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ch < " ":
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


_ESCAPES = {"\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", '"': '\\"'}
_ESCAPES["\\"] = "\\\\"


def jsonb_text(value: Json) -> str:
    """Exactly what Postgres prints for ``value::jsonb::text``.

    Object keys are ordered by UTF-8 length, then bytes (a Mapping cannot hold the
    duplicate keys that jsonb would collapse, last one winning); separators are
    ``", "`` and ``": "``. Only None, bool, int, str, sequences and str-keyed mappings
    are accepted: floats print as Postgres numerics, which is not modelled.
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return _json_string(value)
    if isinstance(value, Mapping):
        keys = sorted(value, key=lambda k: (len(k.encode()), k.encode()))
        return "{" + ", ".join(f"{_json_string(k)}: {jsonb_text(value[k])}" for k in keys) + "}"
    if isinstance(value, Sequence):
        return "[" + ", ".join(jsonb_text(v) for v in value) + "]"
    raise TypeError(f"jsonb_text does not model {type(value).__name__} values")


def operations_checksum(operations: Json) -> str:
    """A migration's checksum: sha256 hex of its operations' jsonb text."""
    return _sha256(jsonb_text(operations))
