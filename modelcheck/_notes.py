"""Hypothesis notes that also work when a machine runs outside Hypothesis (replays)."""

from __future__ import annotations

from hypothesis import note
from hypothesis.control import _current_build_context


def note_step(text: str) -> None:
    """``hypothesis.note`` inside a test case; nothing to attach to otherwise."""
    if _current_build_context.value is not None:
        note(text)
