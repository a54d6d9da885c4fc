"""The one error root of modelcheck.

Every error modelcheck raises descends from :class:`ModelcheckError`; user mistakes
also subclass the matching builtin so ``except ValueError`` keeps working. Messages
end with the fix ("To fix this, either: ...").
"""

from __future__ import annotations

import attrs


class ModelcheckError(Exception):
    """Root of every error raised by modelcheck."""


class ConfigError(ModelcheckError, ValueError):
    """The configuration (options, environment, DSN, bin dir) cannot work."""


class ServerError(ModelcheckError, RuntimeError):
    """A PostgreSQL server could not be started, reached or used."""


class InvalidTarget(ModelcheckError, TypeError):
    """A target name or ``module:attr`` path does not give a usable target."""


@attrs.frozen
class Mismatch:
    """One failure as data: what differed, where, and how to replay it.

    Reports, traces and the mutant runner read these fields; the message people read
    is rendered from them (:meth:`render`), never parsed back.
    """

    heading: str
    #: "after step 3: commit", or "at the start".
    where: str
    machine: str
    target: str
    detail: str
    #: The number of the failing step (None: at the start) and its connection.
    step: int | None = None
    connection: int | None = None
    #: How many steps the failing example ran (the shrunk length, for the last failure).
    step_count: int = 0
    #: What comes between the detail and the replay lines: recent steps or a timeline.
    history_title: str = "steps"
    history: str = ""
    trace: str | None = None
    replay: str = ""

    def render(self) -> str:
        return (
            f"modelcheck: {self.heading} {self.where} (target {self.target!r}, machine "
            f"{self.machine})\n{self.detail}\n{self.history_title}:\n{self.history}\n"
            + (
                f"trace: {self.trace} (the reproduction; it replaces @reproduce_failure)\n"
                if self.trace
                else ""
            )
            + f"replay: {self.replay}"
        )


class StateMismatch(ModelcheckError, AssertionError):
    """The model and the database disagree: a result, an error, or the full state.

    It is an ``AssertionError`` so Hypothesis shrinks it like any failed check; its
    ``failure`` holds the :class:`Mismatch` it was rendered from.
    """

    def __init__(self, failure: Mismatch) -> None:
        super().__init__(failure.render())
        self.failure = failure


class CoverageError(ModelcheckError, AssertionError):
    """A full run ended with a rule that never ran: that part of the store went unchecked."""


class TraceError(ModelcheckError, ValueError):
    """A failure trace cannot be read or replayed (older format, other target, lost machine)."""
