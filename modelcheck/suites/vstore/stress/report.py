"""Stress reports: a JSON summary, a self-contained HTML page and anomaly trace files.

Figures come from the history alone: throughput per second (by completion time) and
per operation, latency percentiles, aborts by SQLSTATE, plus the checker's verdict.
The JSON also holds the calls the page draws: a window of each anomaly's partition,
the involved calls marked. The HTML names the anomaly in words, draws those calls as
a timeline (:mod:`modelcheck._timeline`: lanes per worker, bars over real time) and
the figures as tables and inline SVG (no network resources, no plotting library).
"""

from __future__ import annotations

import html
import json
import math
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from modelcheck import _timeline
from modelcheck.suites.vstore.stress.checker import Anomaly, CheckResult
from modelcheck.suites.vstore.stress.history import TRACE_VERSION, Call
from modelcheck.suites.vstore.stress.runner import RunResult


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100) of unsorted values; 0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, math.ceil(q / 100 * len(ordered)) - 1)
    return ordered[rank]


def _latency(calls: Sequence[Call]) -> dict[str, float]:
    ms = [c.latency * 1000 for c in calls]
    return {
        "p50_ms": round(percentile(ms, 50), 2),
        "p90_ms": round(percentile(ms, 90), 2),
        "p99_ms": round(percentile(ms, 99), 2),
        "max_ms": round(max(ms, default=0.0), 2),
    }


def summarize(run: RunResult, check: CheckResult) -> dict[str, Any]:
    """The figures of one run as JSON-able data."""
    calls = run.history
    start = min((c.invoke for c in calls), default=0.0)
    seconds = max(1, math.ceil(run.wall))
    per_second = [0] * seconds
    for c in calls:
        per_second[min(seconds - 1, max(0, int(c.complete - start)))] += 1
    by_op: dict[str, list[Call]] = defaultdict(list)
    for c in calls:
        by_op[c.operation].append(c)
    aborts = Counter(c.sqlstate for c in calls if c.aborted)
    errors = Counter(f"{c.sqlstate} {c.kind}" for c in calls if c.status == "error")
    per_op = {
        op: {
            "calls": len(cs),
            "ok": sum(c.status == "ok" for c in cs),
            "errors": sum(c.status == "error" and not c.aborted for c in cs),
            "aborts": sum(c.aborted for c in cs),
            "per_second": round(len(cs) / max(run.wall, 1e-9), 1),
            **_latency(cs),
        }
        for op, cs in sorted(by_op.items())
    }
    return {
        "workers": run.config.workers,
        "duration_s": run.config.duration,
        "wall_s": round(run.wall, 3),
        "calls": len(calls),
        "throughput": round(len(calls) / max(run.wall, 1e-9), 1),
        "throughput_per_second": per_second,
        "latency": _latency(calls),
        "per_operation": per_op,
        "aborts": dict(sorted((str(k), v) for k, v in aborts.items())),
        "abort_rate": round(sum(aborts.values()) / max(len(calls), 1), 5),
        "errors": dict(errors.most_common()),
        "indeterminate": sum(c.status == "indeterminate" for c in calls),
        "connects": run.connects,
        "connect_refusals": run.connect_refusals,
        "checker": check.to_json(),
        "timelines": timelines(run, check),
    }


def document(runs: Sequence[tuple[RunResult, CheckResult]], seed: int) -> dict[str, Any]:
    """The JSON report of a stress command (one run, or one per ``--sweep`` entry)."""
    verdicts = [c.verdict for _, c in runs]
    overall = "anomaly" if "anomaly" in verdicts else "unknown" if "unknown" in verdicts else "pass"
    first = runs[0][0]
    return {
        "version": 1,
        "target": first.target,
        "seed": seed,
        "group_size": first.config.group_size,
        "verdict": overall,
        "runs": [summarize(r, c) for r, c in runs],
    }


def write_json(path: Path, doc: dict[str, Any]) -> None:
    path.write_text(json.dumps(doc, indent=2) + "\n")


def distinct(anomalies: Sequence[Anomaly], by_index: Mapping[int, Call]) -> list[Anomaly]:
    """The smallest anomaly (fewest calls to replay) of each kind and operation set."""
    best: dict[tuple[str, tuple[str, ...]], Anomaly] = {}
    for anomaly in anomalies:
        operations = tuple(sorted({by_index[i].operation for i in anomaly.calls if i in by_index}))
        key = (anomaly.kind, operations)
        size = len(anomaly.partition or anomaly.calls)
        if key not in best or size < len(best[key].partition or best[key].calls):
            best[key] = anomaly
    return list(best.values())


def write_traces(
    directory: Path, runs: Sequence[tuple[RunResult, CheckResult]], seed: int
) -> list[Path]:
    """One JSON trace file per *distinct* anomaly (format in docs/stress.md): anomalies
    of one kind among the same operations are one bug seen many times (a missing lock
    forks every branch group), so only the smallest of each is written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for run, check in runs:
        by_index = {c.index: c for c in [*run.setup, *run.history]}
        for n, anomaly in enumerate(distinct(check.anomalies, by_index), 1):
            wanted = set(anomaly.partition or anomaly.calls)
            steps = sorted((by_index[i] for i in wanted if i in by_index), key=lambda c: c.invoke)
            doc = {
                "version": TRACE_VERSION,
                "seed": seed,
                "target": run.target,
                "workers": run.config.workers,
                "anomaly": anomaly.to_json(),
                "setup": [c.to_json() for c in run.setup],
                "steps": [c.to_json() for c in steps],
            }
            path = directory / f"anomaly-w{run.config.workers}-{n}-{anomaly.kind}.json"
            path.write_text(json.dumps(doc, indent=1) + "\n")
            written.append(path)
        undecided = [p for p in check.partitions if p.verdict == "unknown"]
        for n, part in enumerate(undecided, 1):
            steps = sorted((by_index[i] for i in part.calls), key=lambda c: c.invoke)
            doc = {
                "version": TRACE_VERSION,
                "seed": seed,
                "target": run.target,
                "workers": run.config.workers,
                "anomaly": {"kind": "unknown", "message": "search bound hit", "calls": []},
                "setup": [c.to_json() for c in run.setup],
                "steps": [c.to_json() for c in steps],
            }
            path = directory / f"unknown-w{run.config.workers}-{n}.json"
            path.write_text(json.dumps(doc, indent=1) + "\n")
            written.append(path)
    return written


# ------------------------------------------------------------------------------- HTML

#: Each anomaly kind in words: a name, and what it means for the store.
ANOMALY_WORDS: Final[dict[str, tuple[str, str]]] = {
    "no_serial_order": (
        "Not linearizable",
        "no serial order of these calls respects real time and reproduces every result; "
        "the outlined calls are where the longest consistent order gets stuck",
    ),
    "final_state": (
        "Final state unexplained",
        "every call fits a serial order, but the database ends in a state that order "
        "does not produce",
    ),
    "fork": (
        "Lost update",
        "two commits of one branch have the same first parent: one write overwrote another",
    ),
    "lost": ("Lost write", "an entity a call created is not in the database"),
    "duplicate_id": ("Duplicate key", "two entities share an identifier, a pk or an id"),
    "changed_id": ("Changed key", "an entity's keys differ from those a call returned"),
    "version": (
        "Wrong version",
        "a version is not one bump of its parent's, or a branch's is not its head's",
    ),
    "dangling_head": ("Dangling head", "a branch's head is no commit"),
    "dangling_parent": ("Broken history", "a first-parent chain does not reach the root"),
    "cycle": ("History loops", "a branch's first-parent chain loops"),
    "setup": ("Setup disagreed", "a setup call, run alone, disagreed with the model"),
}

#: Timelines drawn per run, and calls per timeline (a window around the anomaly).
MAX_TIMELINES: Final = 3
WINDOW: Final = 160


def anomaly_words(kind: str) -> tuple[str, str]:
    """``(name, meaning)`` of an anomaly kind, for headings."""
    return ANOMALY_WORDS.get(kind, (kind.replace("_", " ").capitalize(), ""))


def _outcome(call: Call) -> _timeline.Outcome:
    if call.status == "ok":
        return "ok"
    if call.status == "error":
        return "aborted" if call.aborted else "error"
    return "unknown"


def _brief(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= 14 else text[:13] + "…"


def _bar(call: Call, highlighted: bool) -> _timeline.Call:
    """A history call as a timeline bar; the label may be short, the detail is whole."""
    args = ", ".join(repr(a) for a in call.args)
    if call.status == "ok":
        result = f"ok {json.dumps(call.result)}"
    elif call.status == "error":
        result = f"{'aborted' if call.aborted else 'error'} {call.sqlstate} {call.kind}"
    else:
        result = "unknown (the connection broke mid-call)"
    detail = (
        f"#{call.index} worker {call.worker}, {call.latency * 1000:.1f} ms\n"
        f"{call.operation}({args})\n→ {result}"
    )
    label = f"{call.operation}({', '.join(_brief(a) for a in call.args[:2])})"
    return _timeline.Call(
        call.worker,
        call.invoke,
        call.complete,
        label,
        _outcome(call),
        highlighted,
        detail,
        call.index,
    )


def _timeline_doc(
    title: str, kind: str | None, calls: Sequence[Call], marked: set[int], origin: float
) -> dict[str, Any]:
    bars = {c.index: c for c in calls}
    shown, note = _timeline.window([_bar(c, c.index in marked) for c in calls], WINDOW)
    return {
        "title": title,
        "kind": kind,
        "note": note,
        "origin": origin,
        "calls": [
            {**bars[b.index].to_json(), "highlighted": b.highlighted}
            for b in shown
            if b.index is not None
        ],
    }


def timelines(run: RunResult, check: CheckResult) -> list[dict[str, Any]]:
    """What the page draws for one run, as JSON: the calls around each anomaly (or, with
    none, the first calls of the largest partition), highlighted where involved."""
    by_index = {c.index: c for c in run.history}
    origin = min((c.invoke for c in run.history), default=0.0)
    out: list[dict[str, Any]] = []
    for n, anomaly in enumerate(check.anomalies, 1):
        involved = {i for i in anomaly.calls if i in by_index}
        if not involved or len(out) == MAX_TIMELINES:
            continue
        scope = [by_index[i] for i in anomaly.partition or anomaly.calls if i in by_index]
        name = anomaly_words(anomaly.kind)[0]
        out.append(_timeline_doc(f"anomaly {n}: {name}", anomaly.kind, scope, involved, origin))
    if out or not check.partitions:
        return out
    undecided = [p for p in check.partitions if p.verdict == "unknown"]
    part = undecided[0] if undecided else max(check.partitions, key=lambda p: len(p.calls))
    scope = [by_index[i] for i in part.calls if i in by_index]
    what = "an undecided partition" if undecided else "the largest partition"
    return [_timeline_doc(f"{what} ({len(scope)} calls)", None, scope, set(), origin)]


def _bars(timeline: Mapping[str, Any]) -> list[_timeline.Call]:
    return [_bar(Call.from_json(data), bool(data.get("highlighted"))) for data in timeline["calls"]]


def _svg_line(
    points: Sequence[tuple[float, float]], x_label: str, y_label: str, width: int = 560
) -> str:
    """A minimal line chart as inline SVG (it shrinks with the page)."""
    height, pad = 220, 44
    if not points:
        return "<p>(no data)</p>"
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x0, x1 = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
    y1 = max(ys) * 1.1 or 1.0

    def sx(x: float) -> float:
        return pad + (x - x0) / (x1 - x0) * (width - 2 * pad)

    def sy(y: float) -> float:
        return height - pad - y / y1 * (height - 2 * pad)

    path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in points)
    dots = "".join(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="2.5"/>' for x, y in points)
    return (
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" style="max-width:100%;height:auto" font-size="11" '
        f'font-family="sans-serif">'
        f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" '
        f'stroke="#555"/><line x1="{pad}" y1="{pad}" x2="{pad}" y2="{height - pad}" '
        f'stroke="#555"/>'
        f'<text x="{pad}" y="{height - pad + 16}">{x0:g}</text>'
        f'<text x="{width - pad}" y="{height - pad + 16}" text-anchor="end">{x1:g}</text>'
        f'<text x="{width / 2}" y="{height - 8}" text-anchor="middle">{html.escape(x_label)}'
        f'</text><text x="{pad - 4}" y="{pad}" text-anchor="end">{y1:.0f}</text>'
        f'<text x="8" y="{pad - 12}">{html.escape(y_label)}</text>'
        f'<polyline fill="none" stroke="#1f77b4" stroke-width="1.5" points="{path}"/>'
        f'<g fill="#1f77b4">{dots}</g></svg>'
    )


def _counts(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in counts.items()) or "none"


def _verdict_banner(verdict: str, anomalies: Sequence[Mapping[str, Any]], unknown: int) -> str:
    if verdict == "anomaly":
        names = []
        for a in anomalies:
            name = f"{anomaly_words(a['kind'])[0]} ({a['kind']})"
            if name not in names:
                names.append(name)
        first = anomaly_words(anomalies[0]["kind"]) if anomalies else ("", "")
        many = f"{len(anomalies)} anomalies: " if len(anomalies) > 1 else ""
        return _timeline.banner("anomaly", f"ANOMALY: {many}{'; '.join(names)}", first[1])
    if verdict == "unknown":
        return _timeline.banner(
            "unknown",
            "UNKNOWN: the checker could not decide",
            f"{unknown} reason(s) below; no anomaly was found, but not every order was "
            "excluded (raise --bound or make partitions smaller)",
        )
    return _timeline.banner(
        "pass", "PASS: every call fits a serial order", "and the final state is explained"
    )


def _run_tables(r: Mapping[str, Any]) -> str:
    c, lat = r["checker"], r["latency"]
    parts = c["partitions"]
    figures = _timeline.table(
        ["run", ""],
        [
            ["calls", r["calls"]],
            ["calls per second", r["throughput"]],
            [
                "latency p50 / p90 / p99 / max (ms)",
                f"{lat['p50_ms']} / {lat['p90_ms']} / {lat['p99_ms']} / {lat['max_ms']}",
            ],
            ["abort rate", r["abort_rate"]],
            ["calls that lost their connection", r["indeterminate"]],
            ["connects", r["connects"]],
            ["connects refused", _counts(r["connect_refusals"])],
        ],
    )
    checker = _timeline.table(
        ["checker", ""],
        [
            ["verdict", c["verdict"]],
            ["time (s)", c["seconds"]],
            ["calls checked", c["checked_calls"]],
            ["states explored", c["explored_states"]],
            ["partitions passed", parts.get("pass", 0)],
            ["partitions with an anomaly", parts.get("anomaly", 0)],
            ["partitions undecided", parts.get("unknown", 0)],
            ["largest partition (calls)", c["largest_partition"]],
        ],
    )
    return f'<div class="row">{figures}{checker}</div>'


def _per_operation(r: Mapping[str, Any]) -> str:
    return _timeline.table(
        ["operation", "calls", "ok", "errors", "aborts", "calls/s", "p50 ms", "p90 ms", "p99 ms"],
        [
            [
                op,
                s["calls"],
                s["ok"],
                s["errors"],
                s["aborts"],
                s["per_second"],
                s["p50_ms"],
                s["p90_ms"],
                s["p99_ms"],
            ]
            for op, s in r["per_operation"].items()
        ],
    )


def _explanations(anomalies: Sequence[Mapping[str, Any]]) -> list[str]:
    """The checker's messages, one expandable block per kind (open when there are few)."""
    by_kind: dict[str, list[str]] = defaultdict(list)
    for a in anomalies:
        by_kind[a["kind"]].append(a["message"])
    out = []
    for kind, messages in by_kind.items():
        name = anomaly_words(kind)[0]
        count = f"{len(messages)} anomalies" if len(messages) > 1 else "1 anomaly"
        shown = "\n\n".join(messages)
        out.append(
            f"<details{' open' if len(messages) <= 3 else ''}><summary>{html.escape(name)} "
            f"(<code>{html.escape(kind)}</code>): {count}, the checker's explanation"
            f"</summary><pre>{html.escape(shown)}</pre></details>"
        )
    return out


def _timeline_section(timeline: Mapping[str, Any], anomaly: Mapping[str, Any] | None) -> str:
    bars = _bars(timeline)
    origin = float(timeline["origin"])
    parts = [f"<h3>{html.escape(timeline['title'])}</h3>"]
    if anomaly is not None:
        parts.append(f"<p>{html.escape(anomaly_words(anomaly['kind'])[1])}.</p>")
    lanes = len({b.worker for b in bars})
    note = f"{lanes} workers, time since the run started; {timeline['note'] or 'every call'}"
    parts += [
        f'<p class="note">{html.escape(note)}</p>',
        _timeline.svg(bars, origin=origin),
        _timeline.picked(),
    ]
    if any(b.highlighted for b in bars):
        parts.append("<h3>The outlined calls, by start time</h3>")
        parts.append(_timeline.calls_table(bars, origin=origin))
    return "\n".join(parts)


def render_html(doc: Mapping[str, Any]) -> str:
    """A self-contained HTML page for a :func:`document`: the verdict in words, then a
    timeline per anomaly (lanes per worker, bars over real time), then the figures."""
    runs = doc["runs"]
    anomalies = [a for r in runs for a in r["checker"]["anomalies"]]
    unknown = sum(len(r["checker"]["unknown"]) for r in runs)
    sweep = f"{len(runs)} runs (workers {', '.join(str(r['workers']) for r in runs)})"
    parts = [
        f"<h1>Stress report: target {html.escape(doc['target'])}</h1>",
        _verdict_banner(doc["verdict"], anomalies, unknown),
        f'<p class="note">seed {doc["seed"]}, group size {doc["group_size"]}, '
        f"{sweep if len(runs) > 1 else '1 run'}</p>",
        _timeline.legend(),
    ]
    if len(runs) > 1:
        parts.append("<h2>Throughput as workers grow</h2>")
        parts.append(
            _svg_line(
                [(r["workers"], r["throughput"]) for r in runs], "workers", "calls per second"
            )
        )
        parts.append(
            _timeline.table(
                ["workers", "calls/s", "p50 ms", "p99 ms", "abort rate", "verdict"],
                [
                    [
                        r["workers"],
                        r["throughput"],
                        r["latency"]["p50_ms"],
                        r["latency"]["p99_ms"],
                        r["abort_rate"],
                        r["checker"]["verdict"],
                    ]
                    for r in runs
                ],
            )
        )
    for r in runs:
        c = r["checker"]
        parts.append(f"<h2>{r['workers']} workers, {r['wall_s']} s: {c['verdict']}</h2>")
        said = anomalies[0]["kind"] if anomalies else None  # the banner's sentence
        by_kind = {a["kind"]: a for a in c["anomalies"] if a["kind"] != said}
        for timeline in r.get("timelines", []):
            parts.append(_timeline_section(timeline, by_kind.get(timeline.get("kind") or "")))
        for u in c["unknown"]:
            parts.append(f'<p class="unknown">undecided: {html.escape(u)}</p>')
        parts += _explanations(c["anomalies"])
        parts.append(_run_tables(r))
        parts.append("<h3>Throughput over time</h3>")
        parts.append(
            _svg_line(list(enumerate(r["throughput_per_second"])), "second", "calls completed")
        )
        parts.append("<h3>Per operation</h3>")
        parts.append(_per_operation(r))
        parts.append('<div class="row"><div><h3>Aborts by SQLSTATE</h3>')
        parts.append(
            _timeline.table(["SQLSTATE", "calls"], list(r["aborts"].items()))
            if r["aborts"]
            else "<p>none</p>"
        )
        parts.append("</div><div><h3>Domain errors (expected, checked by the model)</h3>")
        parts.append(
            _timeline.table(["SQLSTATE kind", "calls"], list(r["errors"].items()))
            if r["errors"]
            else "<p>none</p>"
        )
        parts.append("</div></div>")
    return _timeline.page(f"stress report: {doc['target']} ({doc['verdict']})", parts)


def text_summary(doc: dict[str, Any]) -> str:
    """A few lines for the terminal."""
    lines = []
    for r in doc["runs"]:
        c = r["checker"]
        lat = r["latency"]
        aborts = ", ".join(f"{k}: {v}" for k, v in r["aborts"].items()) or "none"
        lines.append(
            f"{r['workers']} workers, {r['wall_s']} s: {r['calls']} calls, "
            f"{r['throughput']} calls/s; latency p50 {lat['p50_ms']} ms, p90 {lat['p90_ms']} "
            f"ms, p99 {lat['p99_ms']} ms; aborts {aborts} (rate {r['abort_rate']}); "
            f"connect refusals {r['connect_refusals'] or 'none'}"
        )
        lines.append(
            f"  checker: {c['verdict']} in {c['seconds']} s ({c['checked_calls']} calls, "
            f"{c['explored_states']} states; partitions: {_counts(c['partitions'])}; largest "
            f"{c['largest_partition']} calls)"
        )
        for u in c["unknown"]:
            lines.append(f"  unknown: {u}")
        for a in c["anomalies"]:
            lines.append(f"  ANOMALY {a['kind']}: {a['message']}")
    lines.append(f"verdict: {doc['verdict']}")
    return "\n".join(lines)
