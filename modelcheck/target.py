"""The Target protocol: what any system under test provides to the engine.

A target has a ``name`` and an ``install(conn)``, and one coroutine per operation of
its spec that it supports, each taking the framework's
:class:`psycopg.AsyncConnection` first. Optionally: ``capabilities``
(:class:`~modelcheck.spec.Capabilities`), ``observe(conn, *, full)`` (its own reader
of its own tables into the spec's state type) and ``classify(error)`` (its own
error classifier). :func:`check_target` says, before any example, what is missing.
"""

from __future__ import annotations

import inspect
from typing import Any, Protocol, runtime_checkable

import psycopg

from modelcheck.spec import Capabilities, InvalidDefinition, OperationError, Spec


@runtime_checkable
class Target(Protocol):
    """A system under test (see docs/target-adapter.md)."""

    #: A short name used in reports and traces.
    name: str

    def install(self, conn: psycopg.Connection[Any]) -> None:
        """Create the system in an empty database (run once per template database)."""


def capabilities_of(target: object) -> Capabilities:
    found = getattr(target, "capabilities", None)
    return found if isinstance(found, Capabilities) else Capabilities()


def check_target(spec: Spec[Any, Any], target: object) -> None:
    """Fail early, naming every operation the target lacks and is not declared to lack."""
    unsupported = capabilities_of(target).unsupported
    unknown = sorted(unsupported - set(spec.operations))
    if unknown:
        raise InvalidDefinition(
            f"Target {getattr(target, 'name', target)!r} declares unsupported operations "
            f"{', '.join(unknown)} that spec {spec.name!r} does not have. To fix this, "
            f"name operations of the spec ({', '.join(sorted(spec.operations))})."
        )
    missing = [
        name
        for name in spec.operations
        if name not in unsupported and not inspect.iscoroutinefunction(getattr(target, name, None))
    ]
    if missing:
        raise InvalidDefinition(
            f"Target {getattr(target, 'name', target)!r} has no coroutine for "
            f"{', '.join(missing)} (spec {spec.name!r}). To fix this, either: add "
            "`async def <operation>(self, conn, ...)` for each, or declare them in "
            "`capabilities = Capabilities(unsupported=frozenset({...}))`."
        )


async def observe(
    spec: Spec[Any, Any], target: object, conn: psycopg.AsyncConnection[Any], *, full: bool
) -> Any:
    """The database's state: the target's own observer if it has one, else the spec's."""
    own = getattr(target, "observe", None)
    if own is not None:
        return await own(conn, full=full)
    return await spec.observe(conn, target, full=full)  # type: ignore[arg-type]


def classify(spec: Spec[Any, Any], target: object, error: psycopg.Error) -> OperationError:
    own = getattr(target, "classify", None)
    return own(error) if own is not None else spec.classify(error)


__all__ = ["Target", "capabilities_of", "check_target", "classify", "observe"]
