"""modelcheck.edges: look-alike keys and texts around a limit are what they claim."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelcheck import edges
from modelcheck._bench import load_machine


@pytest.mark.parametrize("key", ["feat", "main", "ünïcødé", "Ångström", " lead", "x", "🌿 b"])
def test_variants_differ_from_the_key_and_from_each_other(key: str) -> None:
    variants = edges.identifier_variants(key)
    assert key not in variants
    assert len(set(variants)) == len(variants)
    assert all("\x00" not in v for v in variants)
    groups = edges.variant_groups(key)
    assert [v for g in groups.values() for v in g] == variants
    assert all(groups.values())


def test_the_variants_a_careless_look_up_confuses() -> None:
    variants = edges.identifier_variants("feat")
    assert {"FEAT", "Feat", "feat ", " feat", "feat\t", "fea"} <= set(variants)
    assert "\uff46\uff45\uff41\uff54" in variants  # fullwidth, NFKC folds it to feat
    assert "f\u0435at" in variants  # a Cyrillic e
    decomposed = unicodedata.normalize("NFD", "ünï")
    assert decomposed in edges.identifier_variants("ünï")
    assert unicodedata.normalize("NFC", decomposed) in edges.identifier_variants(decomposed)


@given(st.data())
def test_variant_of_never_draws_the_key(data: st.DataObject) -> None:
    key = data.draw(st.sampled_from(["feat", "ünïcødé", "main", "a b"]))
    assert data.draw(edges.variant_of(key)) != key
    assert data.draw(edges.look_up(key)) in {key, *edges.identifier_variants(key)}


@pytest.mark.parametrize(("limit", "measure"), [(63, "bytes"), (4096, "chars"), (5, "bytes")])
def test_texts_around_a_limit_are_one_unit_either_side(limit: int, measure: edges.Measure) -> None:
    texts = edges.around_limit(limit, measure)
    sizes = {edges.size(t, measure) for t in texts}
    assert sizes == {limit - 1, limit, limit + 1}
    assert texts == sorted(texts, key=lambda t: (edges.size(t, measure), t))


def test_the_texts_mix_units_whitespace_and_combining_marks() -> None:
    names = edges.around_limit(63, "bytes")
    straddling = "x" * 62 + "é"  # 63 characters, 64 bytes
    assert straddling in names
    assert any(t.endswith(" ") and len(t.encode()) == 64 for t in names)
    assert " " * 63 in names
    assert any("\u0301" in t for t in names)
    messages = edges.around_limit(4096, "chars")
    assert "é" * 4096 in messages  # 8192 bytes, within a 4096-character limit
    assert "x" * 4096 + " " in messages
    assert any(t.count("\u0301") == 2048 for t in messages)  # e + U+0301 is 2 characters


@given(st.data())
def test_a_named_choice_draws_the_values_and_shows_only_its_name(data: st.DataObject) -> None:
    values = ("a" * 4096, "b" * 4097, "c")
    strategy = edges.named_choice(values, "LONG_TEXTS")
    assert data.draw(strategy) in values
    assert "LONG_TEXTS" in repr(strategy)
    assert len(repr(strategy)) < 100


def test_a_named_choice_of_nothing_is_refused() -> None:
    with pytest.raises(ValueError, match="no values"):
        edges.named_choice((), "EMPTY")


MACHINE_FILES = sorted(
    path
    for path in (Path(__file__).parent.parent / "machines").glob("test_*.py")
    if "class " in path.read_text() and "Machine" in path.read_text()
)


@pytest.mark.parametrize("path", MACHINE_FILES, ids=lambda p: p.stem)
def test_every_rule_of_every_machine_has_a_short_repr(path: Path) -> None:
    """Hypothesis keeps strategy reprs in per-example events for a whole run: a rule
    over 4,096-character texts once had a 1.3 MB repr, and a run 1.2 GB of them."""
    machine = load_machine(path)
    for rule in machine.setup_state().rules:
        assert len(repr(rule)) < 20_000, rule.function.__name__


@pytest.mark.parametrize(("limit", "measure"), [(63, "bytes"), (4096, "chars"), (5, "bytes")])
def test_a_text_drawn_by_its_parts_is_one_of_the_texts_around_the_limit(
    limit: int, measure: edges.Measure
) -> None:
    """Every (side, shape, piece, space) draw gives one of around_limit's texts, and
    the draws reach every side of the limit and the trim-sensitive texts."""
    listed = set(edges.around_limit(limit, measure))
    strategy = edges.texts_around(limit, measure)
    assert repr(strategy).endswith(f"texts_around({limit}, {measure!r}))")
    seen: set[str] = set()

    @settings(max_examples=400, database=None)
    @given(strategy)
    def draw(text: str) -> None:
        assert text in listed
        seen.add(text)

    draw()
    assert {edges.size(t, measure) for t in seen} == {limit - 1, limit, limit + 1}
    over_by_a_space = [
        t for t in seen if edges.size(t.strip(" "), measure) <= limit < edges.size(t, measure)
    ]
    assert over_by_a_space
