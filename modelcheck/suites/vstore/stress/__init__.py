"""Stress mode: many workers in real parallel, a history, and a checker with a model oracle.

``runner`` drives the workers and records the :mod:`history`; ``checker`` looks for a
serial order per partition and checks the final state; ``report`` renders JSON, HTML
and trace files. ``python -m modelcheck stress`` (``modelcheck/_cli/stress.py``) ties
them together; docs/stress.md explains what is and is not checked.
"""
