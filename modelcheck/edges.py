"""Inputs at the edges, for any suite: look-alike keys and texts around a length limit.

Stores get look-ups and limits wrong in a few recurring ways: a key compared after
case folding, trimming or Unicode normalisation; a limit counted in bytes where the
spec says characters (or the reverse); a limit checked after trimming. Plain random
text almost never hits those cases, so this module builds them on purpose:

>>> "FEAT" in identifier_variants("feat")
True
>>> sorted({len(t.encode()) for t in around_limit(63, "bytes")})
[62, 63, 64]

Everything here is deterministic (lists and ``sampled_from``), so Hypothesis shrinks a
variant back to the plain key when the variant is not what made a run fail.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable, Sequence
from typing import Final, Generic, Literal, TypeVar

from hypothesis import strategies as st

Measure = Literal["bytes", "chars"]
T = TypeVar("T")

#: Whitespace a trim may drop, ASCII and not (NBSP, ideographic space, zero-width space:
#: the last is no whitespace to Python or Postgres, but easy to miss in a name).
SPACES: Final = (" ", "\t", "\n", "\u00a0", "\u3000", "\u200b")
#: One piece per UTF-8 width (1 to 4 bytes) plus a base letter with a combining mark
#: (two characters, three bytes, one glyph).
PIECES: Final = ("x", "é", "€", "🌿", "e\u0301")
#: The shapes of a text at a limit, drawn first so that each is as likely as any other
#: however many pieces and spaces there are.
SHAPES: Final = ("filled", "trailing space", "leading space", "straddling", "blank")
#: Whitespace :func:`around_limit` wraps texts in (ASCII first: trims drop it).
WRAPS: Final = (" ", "\t", "\n", "\u3000")
#: Latin letters and a Cyrillic or Greek letter that looks the same.
CONFUSABLES: Final = {
    "a": "\u0430",
    "c": "\u0441",
    "e": "\u0435",
    "i": "\u0456",
    "o": "\u043e",
    "p": "\u0440",
    "x": "\u0445",
    "y": "\u0443",
    "A": "\u0391",
    "B": "\u0392",
    "E": "\u0395",
    "M": "\u039c",
}


def _fullwidth(text: str) -> str:
    """ASCII letters and digits as their fullwidth forms (NFKC maps them back)."""
    return "".join(chr(ord(c) + 0xFEE0) if c.isascii() and c.isalnum() else c for c in text)


def _confusable(text: str) -> str:
    """The first letter that has a look-alike, replaced by it."""
    for i, c in enumerate(text):
        if c in CONFUSABLES:
            return text[:i] + CONFUSABLES[c] + text[i + 1 :]
    return text


def _combining(text: str) -> str:
    """A combining acute after the first letter: another string, often the same glyph."""
    return text[:1] + "\u0301" + text[1:] if text else text


#: The ways a careless look-up confuses two keys, each a group of transforms.
VARIANT_GROUPS: Final[dict[str, tuple[Callable[[str], str], ...]]] = {
    "case": (str.upper, str.lower, str.swapcase, str.title, str.casefold),
    "unicode": (
        lambda t: unicodedata.normalize("NFC", t),
        lambda t: unicodedata.normalize("NFD", t),
        lambda t: unicodedata.normalize("NFKC", t),
        lambda t: unicodedata.normalize("NFKD", t),
        _fullwidth,
        _combining,
    ),
    "confusable": (_confusable,),
    "whitespace": (
        lambda t: " " + t,
        lambda t: t + " ",
        lambda t: f" {t} ",
        lambda t: t + "\t",
        lambda t: t + "\n",
        lambda t: t + "\u00a0",
        lambda t: t + "\u200b",
        lambda t: t.strip(),
    ),
    "edit": (lambda t: t[:-1], lambda t: t + t[-1:]),
}


def variant_groups(key: str) -> dict[str, list[str]]:
    """:func:`identifier_variants` by group (``case``, ``unicode``, ``confusable``,
    ``whitespace``, ``edit``); empty groups left out."""
    seen = {key}
    groups: dict[str, list[str]] = {}
    for group, transforms in VARIANT_GROUPS.items():
        for transform in transforms:
            variant = transform(key)
            if variant not in seen and "\x00" not in variant:
                seen.add(variant)
                groups.setdefault(group, []).append(variant)
    return groups


def identifier_variants(key: str) -> list[str]:
    """Strings a careless look-up confuses with ``key``: other cases, the four Unicode
    normalisation forms, fullwidth and confusable letters, a combining mark, leading
    and trailing whitespace, one character dropped or repeated. Each differs from
    ``key`` (and from the others), in a fixed order; none contains NUL."""
    return [v for variants in variant_groups(key).values() for v in variants]


def variant_of(key: str, group: str | None = None) -> st.SearchStrategy[str]:
    """One of ``key``'s variants, its group drawn first so that a key with many case
    or whitespace variants still gets its rarer Unicode ones (or from ``group``, when
    ``key`` has variants there); ``key`` when it has none."""
    groups = variant_groups(key)
    if group in groups:
        return st.sampled_from(groups[group])
    if not groups:
        return st.just(key)
    return st.sampled_from(sorted(groups)).flatmap(lambda g: st.sampled_from(groups[g]))


def look_up(key: str, *, exact_weight: int = 1) -> st.SearchStrategy[str]:
    """``key`` itself (``exact_weight`` times out of ``exact_weight + 1``), else one of
    its variants (:func:`variant_of`); shrinks to ``key``."""
    if not variant_groups(key):
        return st.just(key)
    return st.one_of(*[st.just(key)] * max(1, exact_weight), variant_of(key))


def size(text: str, measure: Measure) -> int:
    """``text``'s length in UTF-8 bytes or in characters (code points)."""
    return len(text.encode("utf-8")) if measure == "bytes" else len(text)


def _exactly(length: int, piece: str, measure: Measure, prefix: str, suffix: str) -> str | None:
    """``prefix + piece* + 'x'* + suffix`` of exactly ``length``, or None if too short."""
    room = length - size(prefix, measure) - size(suffix, measure)
    if room < 0:
        return None
    count = room // size(piece, measure)
    filler = piece * count + "x" * (room - count * size(piece, measure))
    return prefix + filler + suffix


def around_limit(
    limit: int,
    measure: Measure,
    *,
    pieces: Sequence[str] = PIECES,
    spaces: Sequence[str] = WRAPS,
) -> list[str]:
    """Texts of length ``limit - 1``, ``limit`` and ``limit + 1`` (in ``measure``),
    built from multi-byte characters and combining marks, some wrapped in whitespace,
    some with a multi-byte character straddling the limit (``'x' * (limit - 1) + 'é'``
    is ``limit + 1`` bytes but ``limit`` characters). Sorted by length, then text."""
    found: set[str] = set()
    for delta in (-1, 0, 1):
        length = limit + delta
        for piece in pieces:
            wraps: Iterable[tuple[str, str]] = [
                ("", ""),
                *((s, "") for s in spaces),
                *(("", s) for s in spaces),
            ]
            for prefix, suffix in wraps:
                text = _exactly(length, piece, measure, prefix, suffix)
                if text:
                    found.add(text)
            # The last character straddles the limit: ASCII up to it, then the piece.
            room = length - size(piece, measure)
            if room >= 0:
                found.add("x" * room + piece)
        blank = length // size(" ", measure)
        found.add(" " * blank)
    return sorted((t for t in found if t and "\x00" not in t), key=lambda t: (size(t, measure), t))


class _Pick(Generic[T]):
    """The value at a drawn index, shown by a name (the repr Hypothesis prints)."""

    def __init__(self, values: Sequence[T], name: str) -> None:
        self.values = tuple(values)
        self.name = name

    def __call__(self, index: int) -> T:
        return self.values[index]

    def __repr__(self) -> str:
        return self.name


def named_choice(values: Sequence[T], name: str) -> st.SearchStrategy[T]:
    """``sampled_from(values)`` whose repr is ``name``, not every value.

    Hypothesis writes a strategy's repr into event strings it keeps for the whole run
    (each filter retry of a rule draw records ``Retried draw from <repr>``, and a
    rule's repr holds its arguments' strategies). Over texts of 4,096 characters that
    repr was 1.3 MB, and a 270-example run kept 1.2 GB of such strings. The draws are
    the same as ``sampled_from``'s (one index), so it shrinks to the first value.
    """
    if not values:
        raise ValueError(f"named_choice({name!r}): no values to choose from")
    return st.sampled_from(range(len(values))).map(_Pick(values, name))


class _TextAt:
    """The text of one (side, shape, piece, space) draw, shown by a short name."""

    def __init__(self, limit: int, measure: Measure) -> None:
        self.limit = limit
        self.measure = measure

    def __call__(self, parts: tuple[int, str, str, str]) -> str:
        delta, shape, piece, space = parts
        length = self.limit + delta
        text = None
        if shape == "trailing space":
            text = _exactly(length, piece, self.measure, "", space)
        elif shape == "leading space":
            text = _exactly(length, piece, self.measure, space, "")
        elif shape == "straddling":
            room = length - size(piece, self.measure)
            text = "x" * room + piece if room >= 0 else None
        elif shape == "blank":
            text = " " * length
        return text or _exactly(length, piece, self.measure, "", "") or "x" * max(length, 1)

    def __repr__(self) -> str:
        return f"texts_around({self.limit}, {self.measure!r})"


def texts_around(limit: int, measure: Measure) -> st.SearchStrategy[str]:
    """A text one unit under, at or over ``limit`` (one of :func:`around_limit`'s),
    drawn by its parts: the side of the limit, the shape (filled with a multi-byte
    piece, wrapped in whitespace, a piece straddling the limit, all spaces), the piece
    and the space. Drawn from the flat list, "one over the limit by a trailing ASCII
    space" (what a limit checked after trimming lets through) came one time in 14;
    drawn by parts it comes one time in 10, and every shape one time in 5. It shrinks
    to the plain text at the limit."""
    parts = st.tuples(
        st.sampled_from((0, 1, -1)),
        st.sampled_from(SHAPES),
        st.sampled_from(PIECES),
        st.sampled_from(WRAPS),
    )
    return parts.map(_TextAt(limit, measure))


__all__ = [
    "CONFUSABLES",
    "PIECES",
    "SHAPES",
    "SPACES",
    "VARIANT_GROUPS",
    "WRAPS",
    "Measure",
    "around_limit",
    "identifier_variants",
    "look_up",
    "named_choice",
    "size",
    "texts_around",
    "variant_groups",
    "variant_of",
]
