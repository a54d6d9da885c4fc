"""Argument validation, in the order docs/domain.md lists it, before anything runs."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from modelcheck.suites.vstore.domain.errors import DomainError
from modelcheck.suites.vstore.domain.types import parse_type

MAX_NAME_BYTES: Final = 63
MAX_MESSAGE_CHARS: Final = 4096
_MIGRATION_ID: Final = re.compile(r"[0-9]{4}_[a-z][a-z0-9_]*")

_SPEC: Final[dict[str, Any]] = {
    "name": str,
    "type": str,
    "nullable": bool,
    "default": (str, type(None)),
}
_FIELDS: Final[dict[str, dict[str, Any]]] = {
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


def name(value: str) -> None:
    if value == "":
        raise DomainError("invalid_name", message="a name must not be empty")
    if len(value.encode()) > MAX_NAME_BYTES:
        raise DomainError("name_too_long", message=f"{value!r} is over 63 bytes")


def message(value: str) -> None:
    if len(value) > MAX_MESSAGE_CHARS:
        raise DomainError("message_too_long", message="a commit message is at most 4096 characters")


def migration_identifier(value: str) -> None:
    name(value)
    if _MIGRATION_ID.fullmatch(value) is None:
        raise DomainError("invalid_name", message=f"{value!r} is not NNNN_name")


def _invalid(text: str) -> DomainError:
    return DomainError("invalid_operation", message=text)


def _shape(value: Mapping[str, Any], fields: Mapping[str, Any], where: str) -> None:
    if set(value) != set(fields):
        raise _invalid(f"{where} must have exactly the keys {sorted(fields)}")
    for key, expected in fields.items():
        # JSON booleans are not numbers: reject True where an int/str is expected.
        if (expected is not bool and isinstance(value[key], bool)) or not isinstance(
            value[key], expected
        ):
            raise _invalid(f"{where}.{key} has the wrong type")


def _column_spec(spec: Any, where: str) -> None:
    if not isinstance(spec, dict):
        raise _invalid(f"{where} must be an object")
    _shape(spec, _SPEC, where)
    name(spec["name"])
    parse_type(spec["type"])


def operation(op: Any, position: int) -> None:
    where = f"operations[{position}]"
    if not isinstance(op, dict) or not isinstance(op.get("op"), str):
        raise _invalid(f"{where} must be an object with a string 'op'")
    fields = _FIELDS.get(op["op"])
    if fields is None:
        raise _invalid(f"{where}: unknown op {op['op']!r}")
    _shape({k: v for k, v in op.items() if k != "op"}, fields, where)
    for key in ("table", "index", "new_name"):
        if key in op:
            name(op[key])
    if isinstance(op.get("column"), str):
        name(op["column"])
    kind = op["op"]
    if kind == "create_table":
        if not op["columns"]:
            raise _invalid(f"{where}.columns must not be empty")
        for i, spec in enumerate(op["columns"]):
            _column_spec(spec, f"{where}.columns[{i}]")
    elif kind == "add_column":
        _column_spec(op["column"], f"{where}.column")
    elif kind == "alter_column_type":
        parse_type(op["type"])
    elif kind == "create_index":
        if not op["columns"] or not all(isinstance(c, str) for c in op["columns"]):
            raise _invalid(f"{where}.columns must be a non-empty list of names")
        for column in op["columns"]:
            name(column)
    elif kind == "insert_rows":
        rows = op["rows"]
        if not rows or not all(isinstance(r, list) for r in rows):
            raise _invalid(f"{where}.rows must be a non-empty list of lists")
        if not all(v is None or isinstance(v, str) for r in rows for v in r):
            raise _invalid(f"{where}.rows holds text or null only")


def operations(ops: Any) -> None:
    if not isinstance(ops, list) or not ops:
        raise _invalid("operations must be a non-empty list")
    for position, op in enumerate(ops):
        operation(op, position)
