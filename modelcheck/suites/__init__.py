"""Suites: a model, its rules and its targets for one kind of system.

A suite imports the engine (``modelcheck``); the engine never imports a suite. The
one place that names suites is the target registry (``modelcheck._targets``).
"""
