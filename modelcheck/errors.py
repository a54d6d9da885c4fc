"""The one error root of modelcheck.

Every error modelcheck raises descends from :class:`ModelcheckError`; user mistakes
also subclass the matching builtin so ``except ValueError`` keeps working. Messages
end with the fix ("To fix this, either: ...").
"""

from __future__ import annotations


class ModelcheckError(Exception):
    """Root of every error raised by modelcheck."""


class ConfigError(ModelcheckError, ValueError):
    """The configuration (options, environment, DSN, bin dir) cannot work."""


class ServerError(ModelcheckError, RuntimeError):
    """A PostgreSQL server could not be started, reached or used."""


class InvalidTarget(ModelcheckError, TypeError):
    """A target name or ``module:attr`` path does not give a usable target."""


class StateMismatch(ModelcheckError, AssertionError):
    """The model and the database disagree: a result, an error, or the full state.

    It is an ``AssertionError`` so Hypothesis shrinks it like any failed check.
    """


class CoverageError(ModelcheckError, AssertionError):
    """A full run ended with a rule that never ran: that part of the store went unchecked."""


class TraceError(ModelcheckError, ValueError):
    """A failure trace cannot be read or replayed (older format, other target, lost machine)."""
