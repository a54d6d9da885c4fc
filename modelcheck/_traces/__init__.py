"""Failure traces: writing, replaying, pinning as regressions, showing as HTML."""
