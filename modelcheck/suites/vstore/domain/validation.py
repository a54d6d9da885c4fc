"""Argument checks shared by every operation, in the order docs/domain.md lists them."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from modelcheck.suites.vstore.domain import types
from modelcheck.suites.vstore.domain.errors import DomainError

MAX_NAME_BYTES: Final = 63
MAX_MESSAGE_CHARS: Final = 4096
MIGRATION_IDENTIFIER: Final = re.compile(r"[0-9]{4}_[a-z][a-z0-9_]*")

_COLUMN_KEYS = {"name": str, "type": str, "nullable": bool, "default": (str, type(None))}
_OPERATION_KEYS: Final[dict[str, dict[str, Any]]] = {
    "create_table": {"table": str, "columns": list},
    "drop_table": {"table": str},
    "add_column": {"table": str, "column": dict},
    "drop_column": {"table": str, "column": str},
    "rename_column": {"table": str, "column": str, "new_name": str},
    "alter_column_type": {"table": str, "column": str, "type": str},
    "create_index": {"index": str, "table": str, "columns": list, "unique": bool},
    "drop_index": {"index": str},
    "insert_rows": {"table": str, "rows": list},
}


def check_name(name: str, what: str = "name") -> None:
    """Empty → invalid_name; over 63 bytes → name_too_long; anything else is kept as is."""
    if name == "":
        raise DomainError("invalid_name", message=f"{what} must not be empty")
    if len(name.encode()) > MAX_NAME_BYTES:
        raise DomainError("name_too_long", message=f"{what} {name!r} is over 63 bytes")


def check_message(message: str) -> None:
    if len(message) > MAX_MESSAGE_CHARS:
        raise DomainError("message_too_long", message="commit message over 4096 characters")


def check_migration_identifier(identifier: str) -> None:
    check_name(identifier, "migration identifier")
    if MIGRATION_IDENTIFIER.fullmatch(identifier) is None:
        raise DomainError(
            "invalid_name", message=f"migration identifier {identifier!r} is not NNNN_name"
        )


def _bad(message: str) -> DomainError:
    return DomainError("invalid_operation", message=message)


def _check_shape(value: Mapping[str, Any], keys: Mapping[str, Any], what: str) -> None:
    if set(value) != set(keys):
        raise _bad(f"{what} needs exactly the keys {sorted(keys)}")
    for key, expected in keys.items():
        # bool is an int in Python but not in JSON: check it explicitly.
        if expected is not bool and isinstance(value[key], bool):
            raise _bad(f"{what}.{key} has the wrong type")
        if not isinstance(value[key], expected):
            raise _bad(f"{what}.{key} has the wrong type")


def _check_column(spec: Any, what: str) -> None:
    if not isinstance(spec, dict):
        raise _bad(f"{what} must be an object")
    _check_shape(spec, _COLUMN_KEYS, what)
    check_name(spec["name"], "column name")
    types.parse_type(spec["type"])


def _check_names(op: Mapping[str, Any]) -> None:
    for key in ("table", "index", "new_name"):
        if key in op:
            check_name(op[key], f"{key} name")
    if isinstance(op.get("column"), str):
        check_name(op["column"], "column name")


def check_operation(op: Any, position: int) -> None:
    what = f"operations[{position}]"
    if not isinstance(op, dict) or not isinstance(op.get("op"), str):
        raise _bad(f"{what} must be an object with an 'op'")
    keys = _OPERATION_KEYS.get(op["op"])
    if keys is None:
        raise _bad(f"{what}: unknown op {op['op']!r}")
    _check_shape({k: v for k, v in op.items() if k != "op"}, keys, what)
    _check_names(op)
    kind = op["op"]
    if kind == "create_table":
        if not op["columns"]:
            raise _bad(f"{what}.columns must not be empty")
        for i, spec in enumerate(op["columns"]):
            _check_column(spec, f"{what}.columns[{i}]")
    elif kind == "add_column":
        _check_column(op["column"], f"{what}.column")
    elif kind == "alter_column_type":
        types.parse_type(op["type"])
    elif kind == "create_index":
        if not op["columns"] or not all(isinstance(c, str) for c in op["columns"]):
            raise _bad(f"{what}.columns must be a non-empty list of names")
        for column in op["columns"]:
            check_name(column, "column name")
    elif kind == "insert_rows":
        rows = op["rows"]
        if not rows or not all(isinstance(r, list) for r in rows):
            raise _bad(f"{what}.rows must be a non-empty list of lists")
        if not all(v is None or isinstance(v, str) for r in rows for v in r):
            raise _bad(f"{what}.rows values must be text or null")


def check_operations(operations: Any) -> None:
    if not isinstance(operations, list) or not operations:
        raise _bad("operations must be a non-empty list")
    for position, op in enumerate(operations):
        check_operation(op, position)
