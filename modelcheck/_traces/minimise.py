"""Minimise a failure trace: delta debugging over its steps, replaying each candidate.

Hypothesis shrinks what it generated, but a shrunk concurrency failure can still carry
steps that change nothing (reads, ``verify()`` calls, a branch nobody uses). This
removes every step whose removal keeps *the same failure* — the same heading, and the
same ``where`` and diff up to step numbers, ids and digests (which move when earlier
steps go) — using ddmin (Zeller and Hildebrandt, 2002) over the recorded events, then
one more pass removing single steps. Every candidate is a real replay on a fresh
database of one shared pool, under a time budget; the best trace found so far is kept
when the budget runs out.
"""

from __future__ import annotations

import copy
import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import attrs

from modelcheck._postgres.isolation import DatabasePool
from modelcheck._postgres.server import EmbeddedServer, ExternalServer
from modelcheck._traces import trace as _trace
from modelcheck._traces.replay import check_target, comparable, replay
from modelcheck.machine import SESSION_SETTINGS, installer_for

#: What may differ between the recorded failure and a smaller trace's: numbers (step
#: and transaction labels, pks) and long hex runs (digests, hashes).
_MOVABLE: Final = re.compile(r"[0-9a-f]{8,}|\d+")


@attrs.frozen
class Minimised:
    trace: dict[str, Any]
    steps_before: int
    steps_after: int
    replays: int
    seconds: float
    #: False when the budget ran out before the last pass finished.
    complete: bool


def shape(text: str) -> str:
    """A failure text with what moves when earlier steps go masked."""
    return _MOVABLE.sub("#", comparable(text))


def same_failure(recorded: Mapping[str, Any], failure: _trace.Failure) -> bool:
    return (
        failure.heading == recorded["heading"]
        and shape(failure.where) == shape(recorded["where"])
        and shape(failure.detail) == shape(recorded["detail"])
    )


def _units(trace: Mapping[str, Any]) -> list[dict[str, Any]]:
    """What ddmin removes: the events of an interleaved trace (steps and BEGINs), the
    steps of a sequential one."""
    return list(trace["events"] if trace["machine"]["interleaved"] else trace["steps"])


def candidate(trace: Mapping[str, Any], units: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The trace with only ``units`` kept."""
    smaller = copy.deepcopy(dict(trace))
    smaller["timeline"] = []  # the recorded one describes the longer run
    if trace["machine"]["interleaved"]:
        kept = {u["number"] for u in units if u["event"] != "begin"}
        smaller["events"] = [dict(u) for u in units]
    else:
        kept = {u["number"] for u in units}
    smaller["steps"] = [s for s in trace["steps"] if s["number"] in kept]
    if not trace["machine"]["interleaved"]:
        smaller["events"] = [e for e in trace["events"] if e.get("number") in kept]
    return smaller


def ddmin(
    units: list[Any], fails: Callable[[list[Any]], bool], out_of_time: Callable[[], bool]
) -> tuple[list[Any], bool]:
    """The classic complement-only ddmin; then single removals. (result, complete)."""
    n = 2
    while len(units) >= 2:
        size = -(-len(units) // n)
        chunks = [units[i : i + size] for i in range(0, len(units), size)]
        for index in range(len(chunks)):
            if out_of_time():
                return units, False
            rest = [u for j, chunk in enumerate(chunks) if j != index for u in chunk]
            if rest and fails(rest):
                units, n = rest, max(n - 1, 2)
                break
        else:
            if n >= len(units):
                break
            n = min(len(units), 2 * n)
    index = 0
    while index < len(units) and len(units) > 1:
        if out_of_time():
            return units, False
        rest = units[:index] + units[index + 1 :]
        if fails(rest):
            units = rest
        else:
            index += 1
    return units, True


def minimise(
    trace: Mapping[str, Any],
    server: EmbeddedServer | ExternalServer,
    *,
    budget_s: float = 120.0,
    target_spec: str | None = None,
) -> Minimised:
    """The smallest trace (in steps) found within ``budget_s`` that fails the same way."""
    started = time.monotonic()
    target = check_target(trace, target_spec)
    replays = 0
    best: dict[str, Any] = dict(trace)

    with DatabasePool(server, installer_for(target), settings=SESSION_SETTINGS) as pool:

        def fails(units: list[Any]) -> bool:
            nonlocal replays, best
            smaller = candidate(trace, units)
            replays += 1
            result = replay(smaller, server, target_spec=target_spec, pool=pool)
            failure = result.failure
            if result.error is not None or failure is None:
                return False
            if not same_failure(trace["failure"], failure):
                return False
            smaller["failure"] = {**trace["failure"], **attrs.asdict(failure)}
            if len(smaller["steps"]) < len(best["steps"]):
                best = smaller
            return True

        def out_of_time() -> bool:
            return time.monotonic() - started > budget_s

        _, complete = ddmin(_units(trace), fails, out_of_time)
    return Minimised(
        best,
        len(trace["steps"]),
        len(best["steps"]),
        replays,
        round(time.monotonic() - started, 3),
        complete,
    )


__all__ = ["Minimised", "candidate", "ddmin", "minimise", "same_failure", "shape"]
