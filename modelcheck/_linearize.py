"""Stress any spec: parallel workers record a history; a checker finds a serial order.

Workers each hold one autocommit connection and call the target's operations at
once, as fast as they can, recording when each call started and ended. The checker
then searches for a *linearization*: an order of the calls that respects real time
(a call that ended before another started comes first), whose replay on the model
reproduces every result, error and opaque value, and whose final model is the
database's final state. Calls that ended in a legal abort had no effect. Like the
interleaved oracle it is bounded: a search that hits the bound says "unknown",
never "pass". Porcupine and Knossos check histories the same way.
"""

from __future__ import annotations

import asyncio
import html
import random
import time
from collections.abc import Callable
from typing import Any, Final, Literal

import attrs
import psycopg

from modelcheck import _timeline
from modelcheck._serial import Observed, replay
from modelcheck.spec import OperationError, Spec
from modelcheck.target import classify, observe

#: Search nodes before the checker answers "unknown".
HISTORY_BOUND: Final = 200_000

#: Histories longer than this are refused (the search recurses once per call).
MAX_CALLS: Final = 400

Draw = Callable[[random.Random], tuple[str, tuple[Any, ...]]]


@attrs.frozen
class Call:
    index: int
    worker: int
    operation: str
    args: tuple[Any, ...]
    start: float
    end: float
    outcome: Any  # a result, or an OperationError


@attrs.frozen
class HistoryVerdict:
    """The checker's answer. On an anomaly, ``prefix`` is the longest order of calls
    that explains every outcome so far (history indices) and ``stuck`` the calls none
    of which can come next: what a timeline highlights."""

    outcome: Literal["pass", "anomaly", "unknown"]
    reason: str = ""
    order: tuple[int, ...] = ()
    nodes: int = 0
    prefix: tuple[int, ...] = ()
    stuck: tuple[int, ...] = ()


@attrs.frozen
class _DeadEnd:
    depth: int
    reason: str
    prefix: tuple[int, ...] = ()
    stuck: tuple[int, ...] = ()


async def record_history(
    spec: Spec[Any, Any],
    target: Any,
    dsn: str,
    *,
    workers: int,
    calls_per_worker: int,
    draw: Draw,
    seed: int,
    options: str = "",
) -> tuple[list[Call], Any]:
    """Run the workers; the history (by start time) and the final observed state."""
    clock = time.monotonic
    history: list[Call] = []

    async def worker(number: int) -> None:
        rng = random.Random(seed * 1000 + number)  # noqa: S311 - a seeded, replayable workload
        conn = await psycopg.AsyncConnection.connect(dsn, autocommit=True, options=options)
        try:
            for _ in range(calls_per_worker):
                operation, args = draw(rng)
                started = clock()
                outcome: Any
                try:
                    outcome = await getattr(target, operation)(conn, *args)
                except OperationError as error:
                    outcome = error
                except psycopg.Error as error:
                    outcome = classify(spec, target, error)
                history.append(Call(0, number, operation, args, started, clock(), outcome))
        finally:
            await conn.close()

    await asyncio.gather(*(worker(n) for n in range(workers)))
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        final = await observe(spec, target, conn, full=True)
    ordered = sorted(history, key=lambda c: c.start)
    return [attrs.evolve(c, index=i) for i, c in enumerate(ordered)], final


def check_history(
    spec: Spec[Any, Any], history: list[Call], final: Any, *, bound: int = HISTORY_BOUND
) -> HistoryVerdict:
    """A linearization of ``history`` that explains every outcome and ``final``."""
    calls = [c for c in history if not _aborted(spec, c)]
    if len(calls) > MAX_CALLS:
        raise ValueError(
            f"{len(calls)} calls: the search goes one call deep per frame. To fix this, "
            f"record at most {MAX_CALLS} (fewer workers or calls per worker)."
        )
    nodes = 0
    seen: set[tuple[frozenset[int], str]] = set()
    best = _DeadEnd(-1, "no order explains the history")

    def dfs(model: Any, done: frozenset[int], order: tuple[int, ...]) -> tuple[int, ...] | None:
        nonlocal nodes, best
        if len(done) == len(calls):
            bindings = spec.bindings(model)
            laws_hold = all(
                bindings.learn(value, sequential=False) is None
                for value in spec.state_opaque(model, final)
            )
            if laws_hold and spec.expected(model, full=True) == final:
                return order
            if len(done) > best.depth:
                best = _DeadEnd(
                    len(done), "the final state differs from every order's model", order
                )
            return None
        key = (done, repr(spec.expected(model, full=True)))
        if key in seen:
            return None
        seen.add(key)
        # Real time: the next call must have started before every pending call ended.
        horizon = min(c.end for i, c in enumerate(calls) if i not in done)
        for i, call in enumerate(calls):
            if i in done or call.start > horizon:
                continue
            nodes += 1
            if nodes > bound:
                raise _Exhausted
            candidate = spec.clone(model)
            reason = replay(
                spec, candidate, Observed(call.operation, call.args, call.outcome), True
            )
            if reason is not None:
                if len(done) > best.depth:
                    text = f"call {call.index} (worker {call.worker}): {reason}"
                    best = _DeadEnd(len(done), text, order, (call.index,))
                elif len(done) == best.depth and order == best.prefix:
                    best = attrs.evolve(best, stuck=(*best.stuck, call.index))
                continue
            found = dfs(candidate, done | {i}, (*order, call.index))
            if found is not None:
                return found
        return None

    try:
        order = dfs(spec.initial_model(), frozenset(), ())
    except _Exhausted:
        return HistoryVerdict("unknown", f"search bound {bound} reached", nodes=nodes)
    if order is None:
        return HistoryVerdict(
            "anomaly", best.reason, nodes=nodes, prefix=best.prefix, stuck=best.stuck
        )
    return HistoryVerdict("pass", order=order, nodes=nodes)


def timeline_calls(
    spec: Spec[Any, Any], history: list[Call], verdict: HistoryVerdict
) -> list[_timeline.Call]:
    """The history as timeline bars; on an anomaly the calls that cannot come next and
    the last calls of the longest consistent prefix are highlighted."""
    marked = set(verdict.stuck) | set(verdict.prefix[-5:])
    out = []
    for call in history:
        if _aborted(spec, call):
            outcome: _timeline.Outcome = "aborted"
        elif isinstance(call.outcome, OperationError):
            outcome = "error"
        else:
            outcome = "ok"
        shown = "ok" if outcome == "ok" else outcome
        result = call.outcome if outcome == "ok" else (call.outcome.sqlstate, call.outcome.kind)
        args = ", ".join(repr(a) for a in call.args)
        detail = (
            f"#{call.index} worker {call.worker}\n{call.operation}({args})\n→ {shown} {result!r}"
        )
        label = f"{call.operation}({', '.join(str(a) for a in call.args)})"
        bar = _timeline.Call(
            call.worker,
            call.start,
            call.end,
            label,
            outcome,
            call.index in marked,
            detail,
            call.index,
        )
        out.append(bar)
    return out


def render_html(
    spec: Spec[Any, Any], history: list[Call], verdict: HistoryVerdict, *, title: str = ""
) -> str:
    """A self-contained page for one checked history: the verdict, the timeline."""
    calls = timeline_calls(spec, history, verdict)
    shown, note = _timeline.window(calls)
    words = {
        "pass": "PASS: a linearization explains every outcome and the final state",
        "anomaly": "ANOMALY: not linearizable",
        "unknown": "UNKNOWN: the search bound was reached",
    }
    origin = min((c.start for c in history), default=0.0)
    body = [
        f"<h1>{html.escape(title or f'stress history of {spec.name}')}</h1>",
        _timeline.banner(verdict.outcome, words[verdict.outcome], verdict.reason),
        _timeline.legend("the calls no order can place next, and the last calls before them"),
        f'<p class="note">{len(history)} calls; {html.escape(note or "every call")}</p>',
        _timeline.svg(shown, origin=origin),
        _timeline.picked(),
        _timeline.calls_table(shown, origin=origin),
    ]
    return _timeline.page(title or f"{spec.name}: {verdict.outcome}", body)


class _Exhausted(Exception):
    pass


def _aborted(spec: Spec[Any, Any], call: Call) -> bool:
    return isinstance(call.outcome, OperationError) and call.outcome.sqlstate in spec.legal_aborts


__all__ = [
    "Call",
    "HistoryVerdict",
    "check_history",
    "record_history",
    "render_html",
    "timeline_calls",
]
