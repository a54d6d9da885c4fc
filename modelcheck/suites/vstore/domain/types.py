"""Column types and their values, exactly as Postgres 15 inputs, casts and prints them.

The model must predict ``column::text`` after an INSERT, an ``ALTER ... TYPE ... USING
c::t`` and ``pg_get_expr`` of a default, so each rule here mirrors a Postgres routine
(int4in, boolin, numeric_in/apply_typmod, varchar, array_in/array_out, get_const_expr).
Everything was checked differentially against a real server (tests/test_types.py).

Modelled inputs: decimal integers, decimals (NaN, Infinity, exponents up to 1000 too),
boolin's spellings, any text, and one-dimensional array literals. Multi-dimensional
arrays and explicit array bounds (``[1:2]={..}``) raise NotImplementedError.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Context, Decimal, localcontext
from typing import Final

from attrs import frozen

from modelcheck.suites.vstore.domain.errors import DomainError, ddl_error

INVALID_TEXT: Final = "22P02"
OUT_OF_RANGE: Final = "22003"
TOO_LONG: Final = "22001"
NO_CAST: Final = "42846"
NAN_TO_INT: Final = "0A000"

_SPACE: Final = " \t\n\r\v\f"  # C isspace() in Postgres' input functions
_INT_RANGE: Final = {"integer": 2**31, "bigint": 2**63}
_SCALARS: Final = ("integer", "bigint", "text", "boolean")
_ARRAYS: Final = {"integer[]": "integer", "text[]": "text"}


@frozen
class SqlType:
    """One supported column type; ``str()`` is its ``format_type`` spelling."""

    #: integer, bigint, text, boolean, varchar, numeric, integer[], text[]
    kind: str
    #: varchar: n; numeric: precision p
    length: int | None = None
    #: numeric: scale s
    scale: int | None = None

    def __str__(self) -> str:
        if self.kind == "varchar":
            return f"character varying({self.length})"
        if self.kind == "numeric":
            return f"numeric({self.length},{self.scale})"
        return self.kind

    @property
    def element(self) -> SqlType | None:
        """The element type of an array type, else None."""
        base = _ARRAYS.get(self.kind)
        return SqlType(base) if base else None


_VARCHAR_RE: Final = re.compile(r"character varying\(([1-9][0-9]{0,2})\)")
_NUMERIC_RE: Final = re.compile(r"numeric\(([1-9][0-9]{0,1}),(0|[1-9][0-9]?)\)")


def parse_type(spelling: str) -> SqlType:
    """The type spelled exactly as ``format_type`` prints it; anything else is rejected."""
    if spelling in _SCALARS or spelling in _ARRAYS:
        return SqlType(spelling)
    if m := _VARCHAR_RE.fullmatch(spelling):
        n = int(m[1])
        if n <= 100:
            return SqlType("varchar", n)
    elif m := _NUMERIC_RE.fullmatch(spelling):
        p, s = int(m[1]), int(m[2])
        if p <= 20 and s <= p:
            return SqlType("numeric", p, s)
    raise DomainError("invalid_operation", message=f"unsupported type {spelling!r}")


# --- internal values ---------------------------------------------------------------

#: A numeric: (value, display scale) or the string "NaN"
_Num = tuple[Decimal, int] | str
_Value = int | bool | str | _Num | list[object]

_CTX: Final = Context(prec=2000, Emax=10**6, Emin=-(10**6))


def _int_in(text: str, kind: str) -> int:
    """pg_strtoint32/64 (PG15): overflow is reported before trailing junk."""
    limit = _INT_RANGE[kind]
    i, n = 0, len(text)
    while i < n and text[i] in _SPACE:
        i += 1
    neg = False
    if i < n and text[i] in "+-":
        neg = text[i] == "-"
        i += 1
    start = i
    acc = 0
    while i < n and "0" <= text[i] <= "9":
        acc = acc * 10 + ord(text[i]) - 48
        if acc > (limit if neg else limit - 1):
            raise ddl_error(OUT_OF_RANGE, f"value {text!r} is out of range for type {kind}")
        i += 1
    if i == start:
        raise ddl_error(INVALID_TEXT, f"invalid input syntax for type {kind}: {text!r}")
    while i < n and text[i] in _SPACE:
        i += 1
    if i != n:
        raise ddl_error(INVALID_TEXT, f"invalid input syntax for type {kind}: {text!r}")
    return -acc if neg else acc


def _bool_in(text: str) -> bool:
    """boolin: trimmed, case-insensitive unique prefixes of true/false/yes/no, on/off, 1/0."""
    v = text.strip(_SPACE).lower() if text.isascii() else text.strip(_SPACE)
    if v:
        if ("true".startswith(v) and v[0] == "t") or ("yes".startswith(v) and v[0] == "y"):
            return True
        if ("false".startswith(v) and v[0] == "f") or ("no".startswith(v) and v[0] == "n"):
            return False
        if v[0] == "o" and len(v) >= 2:
            if "on".startswith(v):
                return True
            if "off".startswith(v):
                return False
        if v == "1":
            return True
        if v == "0":
            return False
    raise ddl_error(INVALID_TEXT, f"invalid input syntax for type boolean: {text!r}")


_NUM_RE: Final = re.compile(r"([+-]?)([0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE]([+-]?[0-9]+))?")
_EXP_RE: Final = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)[eE][ \t\n\r\v\f].*", re.DOTALL)
_SPECIALS: Final = {
    "nan": "NaN",
    "infinity": "Infinity",
    "+infinity": "Infinity",
    "-infinity": "-Infinity",
    "inf": "Infinity",
    "+inf": "Infinity",
    "-inf": "-Infinity",
}


def _numeric_in(text: str) -> _Num:
    """numeric_in without typmod: the value and its display scale (digits after '.')."""
    body = text.strip(_SPACE)
    special = _SPECIALS.get(body.lower()) if body.isascii() else None
    if special is not None:
        return special
    m = _NUM_RE.fullmatch(body)
    if not m:
        if _EXP_RE.fullmatch(body):
            # strtol() skips spaces after the 'e'; not worth modelling.
            raise NotImplementedError(f"numeric exponent syntax {text!r} is not modelled")
        raise ddl_error(INVALID_TEXT, f"invalid input syntax for type numeric: {text!r}")
    sign, digits, exp_text = m[1], m[2], m[3]
    exponent = int(exp_text) if exp_text else 0
    if abs(exponent) > 1000:
        # Limits depend on weight and display scale ("value overflows numeric format").
        raise NotImplementedError(f"numeric exponents beyond 1000 are not modelled: {text!r}")
    frac = digits.split(".", 1)[1] if "." in digits else ""
    scale = max(0, len(frac) - exponent)
    with localcontext(_CTX):
        value = Decimal(sign + digits) * Decimal(10) ** exponent
    return (value, scale)


def _numeric_typmod(num: _Num, typ: SqlType) -> _Num:
    """apply_typmod: round half away from zero to s digits, then at most p-s int digits."""
    assert typ.length is not None
    assert typ.scale is not None
    if isinstance(num, str):
        if num == "NaN":
            return num
        raise ddl_error(OUT_OF_RANGE, f"numeric field overflow: {num} into {typ}")
    value, _ = num
    with localcontext(_CTX):
        rounded = value.quantize(Decimal(1).scaleb(-typ.scale), rounding=ROUND_HALF_UP)
        if abs(rounded) >= Decimal(10) ** (typ.length - typ.scale):
            raise ddl_error(OUT_OF_RANGE, f"numeric field overflow: {value} into {typ}")
    return (rounded, typ.scale)


def _numeric_out(num: _Num) -> str:
    if isinstance(num, str):
        return num
    value, scale = num
    with localcontext(_CTX):
        text = f"{abs(value).quantize(Decimal(1).scaleb(-scale)):f}"
    return ("-" + text) if value < 0 else text


def _varchar_typmod(text: str, typ: SqlType, explicit: bool) -> str:
    """varchar(): explicit casts truncate; assignment truncates only trailing spaces."""
    assert typ.length is not None
    if len(text) <= typ.length:
        return text
    if not explicit and text[typ.length :].strip(" "):
        raise ddl_error(TOO_LONG, f"value too long for type {typ}")
    return text[: typ.length]


# --- arrays ------------------------------------------------------------------------


def _malformed(text: str) -> DomainError:
    return ddl_error(INVALID_TEXT, f"malformed array literal: {text!r}")


def _array_count(text: str, start: int) -> int:  # noqa: PLR0915 (a C state machine, kept whole)
    """PG 15's ArrayCount state machine from the opening brace: 22P02 or the depth."""
    state = "none"
    level = depth = 0
    in_quotes = False
    nelems = [1] * 7
    last = [0] * 7
    i = start
    while True:
        if i >= len(text):
            raise _malformed(text)
        ch = text[i]
        if ch == "\\":
            if state not in ("level", "elem", "quoted", "elem_delim"):
                raise _malformed(text)
            if state != "quoted":
                state = "elem"
            i += 1
            if i >= len(text):
                raise _malformed(text)
        elif ch == '"':
            if state not in ("level", "quoted", "elem_delim"):
                raise _malformed(text)
            in_quotes = not in_quotes
            state = "quoted" if in_quotes else "quoted_done"
        elif in_quotes:
            pass
        elif ch == "{":
            if state not in ("none", "level", "level_delim") or level >= 6:
                raise _malformed(text)
            state = "level"
            level += 1
            depth = max(depth, level)
        elif ch == "}":
            ok = ("elem", "quoted_done", "level_done")
            if state not in ok and not (level == 1 and state == "level"):
                raise _malformed(text)
            state = "level_done"
            level -= 1
            if last[level] and nelems[level] != last[level]:
                raise _malformed(text)
            last[level], nelems[level] = nelems[level], 1
            if level == 0:
                break
        elif ch == ",":
            if state not in ("elem", "quoted_done", "level_done"):
                raise _malformed(text)
            state = "level_delim" if state == "level_done" else "elem_delim"
            nelems[level - 1] += 1
        elif ch not in _SPACE:
            if state not in ("level", "elem", "elem_delim"):
                raise _malformed(text)
            state = "elem"
        i += 1
    if text[i + 1 :].strip(_SPACE):
        raise _malformed(text)
    return depth


class _ArrayReader:
    """array_in's element pass for a one-dimensional literal: the raw element texts.

    The structure was checked by :func:`_array_count`; the checks here are redundant.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.i = 0

    def _skip_space(self) -> None:
        while self.i < len(self.text) and self.text[self.i] in _SPACE:
            self.i += 1

    def _peek(self) -> str:
        if self.i >= len(self.text):
            raise _malformed(self.text)
        return self.text[self.i]

    def _escaped(self) -> str:
        # At a backslash: the next character, whatever it is.
        if self.i + 1 >= len(self.text):
            raise _malformed(self.text)
        self.i += 2
        return self.text[self.i - 1]

    def read(self) -> list[str | None]:
        self._skip_space()
        if self.i < len(self.text) and self.text[self.i] == "[":
            raise NotImplementedError("array literals with explicit bounds are not modelled")
        if self._peek() != "{":
            raise _malformed(self.text)
        if _array_count(self.text, self.i) > 1:
            raise NotImplementedError("multi-dimensional arrays are not modelled")
        self.i += 1
        items: list[str | None] = []
        self._skip_space()
        if self._peek() == "}":
            self.i += 1
        else:
            while True:
                self._skip_space()
                items.append(self._quoted() if self._peek() == '"' else self._unquoted())
                delimiter = self._peek()
                self.i += 1
                if delimiter == "}":
                    break
                if delimiter != ",":
                    raise _malformed(self.text)
        if self.text[self.i :].strip(_SPACE):
            raise _malformed(self.text)
        return items

    def _quoted(self) -> str:
        self.i += 1
        buf: list[str] = []
        while (ch := self._peek()) != '"':
            if ch == "\\":
                buf.append(self._escaped())
            else:
                buf.append(ch)
                self.i += 1
        self.i += 1
        self._skip_space()
        return "".join(buf)

    def _unquoted(self) -> str | None:
        if self._peek() == "{":
            raise NotImplementedError("multi-dimensional arrays are not modelled")
        buf: list[str] = []
        keep = 0  # trailing unescaped whitespace is dropped
        escaped = False
        while (ch := self._peek()) not in ",}":
            if ch in '"{':
                raise _malformed(self.text)
            if ch == "\\":
                buf.append(self._escaped())
                escaped = True
                keep = len(buf)
            else:
                buf.append(ch)
                self.i += 1
                if ch not in _SPACE:
                    keep = len(buf)
        if not buf:
            raise _malformed(self.text)
        raw = "".join(buf[:keep])
        return None if not escaped and raw.upper() == "NULL" else raw


def _array_quote(item: str) -> str:
    if item == "" or item.upper() == "NULL" or any(ch in '{}",\\' + _SPACE for ch in item):
        return '"' + item.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return item


# --- conversions -------------------------------------------------------------------


def _input(text: str, typ: SqlType) -> _Value:
    """The type's input function with typmod -1 (what a literal Const holds)."""
    if typ.kind in _INT_RANGE:
        return _int_in(text, typ.kind)
    if typ.kind == "boolean":
        return _bool_in(text)
    if typ.kind == "numeric":
        return _numeric_in(text)
    if typ.element is not None:
        element = typ.element
        return [
            None if item is None else _input(item, element) for item in _ArrayReader(text).read()
        ]
    return text


def _output(value: _Value, typ: SqlType) -> str:
    if typ.kind == "boolean":
        return "true" if value else "false"
    if typ.kind == "numeric":
        return _numeric_out(value)  # type: ignore[arg-type]
    if typ.element is not None:
        assert isinstance(value, list)
        if typ.kind == "text[]":
            return (
                "{" + ",".join("NULL" if v is None else _array_quote(str(v)) for v in value) + "}"
            )
        return "{" + ",".join("NULL" if v is None else str(v) for v in value) + "}"
    return str(value)


def _typmod(value: _Value, typ: SqlType, explicit: bool) -> _Value:
    if typ.kind == "varchar":
        assert isinstance(value, str)
        return _varchar_typmod(value, typ, explicit)
    if typ.kind == "numeric":
        return _numeric_typmod(value, typ)  # type: ignore[arg-type]
    return value


def input_value(text: str | None, typ: SqlType) -> str | None:
    """What ``INSERT INTO t (c) VALUES ('text')`` stores, printed as ``c::text``."""
    if text is None:
        return None
    return _output(_typmod(_input(text, typ), typ, explicit=False), typ)


def input_row(texts: Sequence[str | None], row_types: Sequence[SqlType]) -> tuple[str | None, ...]:
    """One ``VALUES`` row as Postgres converts it: every input function first (at parse
    time, in column order), then every typmod coercion (``numeric(p,s)``, ``varchar(n)``)."""
    parsed = [
        None if t is None else _input(t, typ) for t, typ in zip(texts, row_types, strict=True)
    ]
    return tuple(
        None if v is None else _output(_typmod(v, typ, explicit=False), typ)
        for v, typ in zip(parsed, row_types, strict=True)
    )


_STRINGS: Final = ("text", "varchar")
_NUMBERS: Final = ("integer", "bigint", "numeric")
#: source kind -> target kinds reachable by pg_cast or array coercion (besides strings).
_CASTS: Final[dict[str, frozenset[str]]] = {
    "integer": frozenset((*_NUMBERS, "boolean")),
    "bigint": frozenset(_NUMBERS),
    "numeric": frozenset(_NUMBERS),
    "boolean": frozenset(("boolean", "integer")),
    "integer[]": frozenset(_ARRAYS),
    "text[]": frozenset(_ARRAYS),
}


def cast_exists(source: SqlType, target: SqlType) -> bool:
    """Whether ``c::target`` parses for a ``source`` column (else 42846).

    Strings cast to and from everything (I/O conversion); the rest is pg_cast as
    observed on PG 15: integer/bigint/numeric among themselves, integer<->boolean
    (but not bigint or numeric), integer[]<->text[] element-wise.
    """
    if source.kind in _STRINGS or target.kind in _STRINGS:
        return True
    return target.kind in _CASTS[source.kind]


def _cast(value: _Value, source: SqlType, target: SqlType) -> _Value:
    """An explicit cast of a non-null value, typmod coercion included."""
    if source == target:
        return value
    if source.kind in _STRINGS:
        assert isinstance(value, str)
        return _typmod(_input(value, SqlType(target.kind)), target, explicit=True)
    if target.kind in _STRINGS:
        return _typmod(_output(value, source), target, explicit=True)
    if target.element is not None:
        assert isinstance(value, list)
        assert source.element is not None
        el_s, el_t = source.element, target.element
        return [None if v is None else _cast(v, el_s, el_t) for v in value]  # type: ignore[arg-type]
    return _cast_scalar(value, source.kind, target)


def _cast_scalar(value: _Value, source: str, target: SqlType) -> _Value:
    """Casts among integer, bigint, numeric and boolean (pg_cast functions)."""
    if target.kind == "boolean":
        return value != 0
    if source == "boolean":
        return 1 if value else 0
    if target.kind == "numeric":
        num = (Decimal(value), 0) if isinstance(value, int) else value
        return _numeric_typmod(num, target)  # type: ignore[arg-type]
    if isinstance(value, tuple):  # numeric -> integer rounds half away from zero
        with localcontext(_CTX):
            value = int(value[0].quantize(Decimal(1), rounding=ROUND_HALF_UP))
    elif isinstance(value, str):
        raise ddl_error(NAN_TO_INT, f"cannot convert {value} to {target}")
    assert isinstance(value, int)
    limit = _INT_RANGE[target.kind]
    if not -limit <= value < limit:
        raise ddl_error(OUT_OF_RANGE, f"{target} out of range")
    return value


_TEXT: Final = SqlType("text")


def cast_value(value: str | None, source: SqlType, target: SqlType) -> str | None:
    """``'value'::source::target`` printed as text: explicit cast semantics.

    This is what ``ALTER TABLE t ALTER COLUMN c TYPE target USING c::target`` does to
    a stored ``source`` value (raises 42846 when no cast exists, even for NULL).
    """
    if not cast_exists(source, target):
        raise ddl_error(NO_CAST, f"cannot cast type {source} to {target}")
    if value is None:
        return None
    stored = _cast(value, _TEXT, source)
    return _output(_cast(stored, source, target), target)


def _quote_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def render_default(text: str, typ: SqlType) -> str:
    """``pg_get_expr`` of ``c typ DEFAULT 'text'``.

    The literal becomes a Const through the input function *without* typmod (so
    22P02/22003 from the input function are raised at CREATE time) and the typmod
    coercion stays an unevaluated implicit call that ruleutils hides: CREATE TABLE
    accepts a too-long varchar or overflowing numeric default and prints it as written.
    ADD COLUMN prints the same but evaluates the default once (even on an empty table),
    so there every :func:`input_value` error is raised.
    """
    base = SqlType(typ.kind) if typ.kind in ("varchar", "numeric") else typ
    value = _input(text, base)
    if typ.kind == "integer" and isinstance(value, int) and value >= 0:
        return str(value)
    if typ.kind == "boolean":
        return "true" if value else "false"
    printed = _output(value, base)
    if typ.kind == "numeric" and printed[0].isdigit() and "." in printed:
        return printed
    label = {"varchar": "character varying", "numeric": "numeric"}.get(typ.kind, typ.kind)
    return f"{_quote_literal(printed)}::{label}"
