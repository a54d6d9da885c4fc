"""Progress during long runs: a live status line on a terminal, plain lines in CI logs.

A ``ci`` run that finds a bug can spend minutes shrinking; without this the user sees
nothing until the end. The machine calls :meth:`Progress.tick` after every step and
every example; what is written is throttled, so a tick costs one clock read.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

import attrs

#: A live line is rewritten at most this often.
LIVE_INTERVAL_S: Final = 0.5
#: In a log (not a terminal) one plain line this often.
LOG_INTERVAL_S: Final = 30.0


@attrs.define
class Progress:
    """Writes ``machine: examples, steps, phase`` lines through ``write(text, live)``.

    ``live`` means the line may be overwritten (a terminal); otherwise each write is a
    full line. ``write=None`` writes nothing (xdist workers, the CLI's own runs).
    """

    write: Callable[[str, bool], None] | None = None
    live: bool = False
    #: Seconds between writes; by default ``LIVE_INTERVAL_S`` or ``LOG_INTERVAL_S``.
    interval_s: float | None = None
    _last: float = attrs.field(factory=time.monotonic)
    _shown: bool = False

    def tick(self, machine: str, examples: int, steps: int, failed: bool) -> None:
        """Maybe write the status; ``failed`` means a failure was found (now shrinking)."""
        if self.write is None:
            return
        now = time.monotonic()
        interval = self.interval_s
        if interval is None:
            interval = LIVE_INTERVAL_S if self.live else LOG_INTERVAL_S
        if now - self._last < interval:
            return
        self._last = now
        phase = "shrinking a failure" if failed else "generating"
        self._shown = True
        counts = f"{examples} example{'s' * (examples != 1)}, {steps} step{'s' * (steps != 1)}"
        self.write(f"modelcheck: {machine}: {counts}, {phase}", self.live)

    def done(self) -> None:
        """End a live line so the next output starts on a fresh line."""
        if self.write is not None and self.live and self._shown:
            self.write("", False)
        self._shown = False


__all__ = ["Progress"]
