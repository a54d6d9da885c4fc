"""The machines are plain Hypothesis tests; the plugin provides their environment."""

from __future__ import annotations

from modelcheck._machine_fixtures import modelcheck_environment

__all__ = ["modelcheck_environment"]
