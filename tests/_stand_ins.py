"""Stand-ins for Hypothesis's data object, for calling a rule by hand in a test."""

from __future__ import annotations

from typing import Any


class Draw:
    """Every draw returns ``value`` (a ``draw_unvisited`` position, a choice)."""

    def __init__(self, value: object) -> None:
        self.value = value

    def draw(self, strategy: object, label: str | None = None) -> Any:
        return self.value
