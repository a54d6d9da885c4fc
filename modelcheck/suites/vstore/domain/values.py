"""Hypothesis strategies for column types and value texts the model predicts exactly.

Generation stays inside what tests/test_types.py verified against Postgres: decimal
integers, plain decimals (no exponents, NaN, Infinity), boolin spellings, text over a
small alphabet (ASCII letters, digits, space, punctuation that matters to arrays and
quoting, a little Unicode) and one-dimensional array literals. Mostly valid values,
sometimes invalid ones (bad syntax, out of range, too long) so errors are exercised.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from hypothesis import strategies as st

from modelcheck.suites.vstore.domain.types import SqlType

# No "{": random text never forms a nested array literal (those are not modelled).
_ALPHABET: Final = "abcXYZ019 -.,'\"\\}é日ß🙂"
_BOOL_WORDS: Final = ("t", "true", "y", "yes", "on", "1", "f", "false", "n", "no", "of", "off", "0")


def sql_types() -> st.SearchStrategy[SqlType]:
    """Every supported type; typmods biased to small values so limits are hit."""
    simple = [
        st.just(SqlType(k)) for k in ("integer", "bigint", "text", "boolean", "integer[]", "text[]")
    ]
    varchar = st.integers(1, 100).map(lambda n: SqlType("varchar", n))
    numeric = st.integers(1, 20).flatmap(
        lambda p: st.integers(0, p).map(lambda s: SqlType("numeric", p, s))
    )
    small_varchar = st.integers(1, 5).map(lambda n: SqlType("varchar", n))
    small_numeric = st.integers(1, 5).flatmap(
        lambda p: st.integers(0, p).map(lambda s: SqlType("numeric", p, s))
    )
    return st.one_of(*simple, small_varchar | varchar, small_numeric | numeric)


def _pad(text: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    space = st.sampled_from(["", "", "", " ", "  ", "\t"])
    return st.tuples(space, text, space).map("".join)


def _integers(bits: int) -> st.SearchStrategy[str]:
    limit = 2 ** (bits - 1)
    valid = st.one_of(
        st.integers(-limit, limit - 1),
        st.sampled_from([0, -limit, limit - 1]),
        st.integers(-1000, 1000),
    )
    signed = st.tuples(st.sampled_from(["", "", "+"]), valid).map(
        lambda t: str(t[1]) if t[1] < 0 else t[0] + str(t[1])
    )
    overflow = st.sampled_from([limit, -limit - 1, limit * 10]).map(str)
    bad = st.sampled_from(["", " ", "abc", "1.5", "1 2", "--1", "+", "12a", "0x10"])
    return st.one_of(_pad(signed), overflow, bad)


def _decimals(typ: SqlType) -> st.SearchStrategy[str]:
    assert typ.length is not None
    assert typ.scale is not None
    int_digits = typ.length - typ.scale

    def number(parts: tuple[str, str, str, bool]) -> str:
        sign, whole, frac, point = parts
        if not whole and not frac:
            whole = "0"
        return sign + whole + ("." + frac if frac or point else "")

    digits = st.text("0123456789", min_size=0, max_size=int_digits + 1)
    fraction = st.text("0123456789", min_size=0, max_size=typ.scale + 2)
    valid = st.tuples(st.sampled_from(["", "", "-", "+"]), digits, fraction, st.booleans())
    bad = st.sampled_from(["", "abc", "1.2.3", ".", "-", "1,5", "1 5"])
    return st.one_of(_pad(valid.map(number)), bad)


def _texts(max_size: int = 12) -> st.SearchStrategy[str]:
    return st.text(_ALPHABET, max_size=max_size)


def _booleans() -> st.SearchStrategy[str]:
    word = st.tuples(st.sampled_from(_BOOL_WORDS), st.booleans()).map(
        lambda t: t[0].upper() if t[1] else t[0]
    )
    bad = st.sampled_from(["", "o", "maybe", "tru e", "2", "yess", "nope"])
    return st.one_of(_pad(word), bad)


def _array(element: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    item = st.one_of(element, st.just("NULL"), st.just("null"))
    sep = st.sampled_from([",", ",", ", ", " ,"])
    valid = st.tuples(st.lists(item, max_size=4), sep).map(lambda t: "{" + t[1].join(t[0]) + "}")
    bad = st.sampled_from(["", "{", "}", "1,2", "{1,}", "{,1}", "{1}x", "{a}", '{"1"2}'])
    return st.one_of(_pad(valid), bad)


def _text_element() -> st.SearchStrategy[str]:
    plain = st.text("abcXY01 -.é", min_size=1, max_size=6).filter(lambda s: s.strip() != "")
    quoted = st.text(_ALPHABET + "{", max_size=6).map(
        lambda s: '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'
    )
    return st.one_of(plain, quoted)


def _varchars(typ: SqlType) -> st.SearchStrategy[str]:
    assert typ.length is not None
    spaced = st.tuples(_texts(typ.length), st.sampled_from(["", " ", "   "])).map("".join)
    return st.one_of(_texts(typ.length + 2), spaced)


def values_for(typ: SqlType) -> st.SearchStrategy[str]:
    """Input texts for ``typ``: mostly valid, sometimes invalid in a modelled way."""
    by_kind: dict[str, Callable[[], st.SearchStrategy[str]]] = {
        "integer": lambda: _integers(32),
        "bigint": lambda: _integers(64),
        "boolean": _booleans,
        "numeric": lambda: _decimals(typ),
        "varchar": lambda: _varchars(typ),
        "integer[]": lambda: _array(
            _pad(st.integers(-(2**31), 2**31 - 1).map(str)) | _integers(32)
        ),
        "text[]": lambda: _array(_text_element()),
        "text": _texts,
    }
    return by_kind[typ.kind]()


def any_text_values() -> st.SearchStrategy[str]:
    """Text that sometimes parses as a number, a boolean or an array, so casts vary."""
    return st.one_of(
        _texts(),
        _integers(64),
        _decimals(SqlType("numeric", 8, 3)),
        _booleans(),
        _array(_integers(32)),
        _array(_text_element()),
    )
