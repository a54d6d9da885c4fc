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
