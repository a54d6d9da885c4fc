"""Stress reports: a JSON summary, a self-contained HTML page and anomaly trace files.

Figures come from the history alone: throughput per second (by completion time) and
per operation, latency percentiles, aborts by SQLSTATE, plus the checker's verdict.
The HTML draws its charts as inline SVG (no network resources, no plotting library).
"""

from __future__ import annotations

import html
import json
import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from modelcheck.suites.vstore.stress.checker import CheckResult
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


def write_traces(
    directory: Path, runs: Sequence[tuple[RunResult, CheckResult]], seed: int
) -> list[Path]:
    """One JSON trace file per anomaly (format in docs/stress.md); returns the paths."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for run, check in runs:
        by_index = {c.index: c for c in [*run.setup, *run.history]}
        for n, anomaly in enumerate(check.anomalies, 1):
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


def _svg_line(
    points: Sequence[tuple[float, float]], x_label: str, y_label: str, width: int = 560
) -> str:
    """A minimal line chart as inline SVG."""
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
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-size="11" font-family="sans-serif">'
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


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>" for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def render_html(doc: dict[str, Any]) -> str:
    """A self-contained HTML page for a :func:`document`."""
    parts = [
        "<!doctype html><meta charset='utf-8'><title>modelcheck stress report</title>",
        "<style>body{font-family:sans-serif;max-width:1000px;margin:2em auto}"
        "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;"
        "padding:2px 8px;text-align:right}pre{background:#f6f6f6;padding:.5em;"
        "white-space:pre-wrap}.pass{color:#080}.anomaly{color:#b00}.unknown{color:#a60}"
        "</style>",
        f"<h1>Stress report: target {html.escape(doc['target'])}</h1>",
        f"<p>seed {doc['seed']}, group size {doc['group_size']}; verdict "
        f"<b class='{doc['verdict']}'>{doc['verdict'].upper()}</b></p>",
    ]
    runs = doc["runs"]
    if len(runs) > 1:
        parts.append("<h2>Throughput as workers grow</h2>")
        parts.append(
            _svg_line(
                [(r["workers"], r["throughput"]) for r in runs], "workers", "calls per second"
            )
        )
        parts.append(
            _table(
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
        parts.append(f"<h2>{r['workers']} workers, {r['wall_s']} s</h2>")
        parts.append(
            f"<p>{r['calls']} calls, {r['throughput']} calls/s; latency p50 "
            f"{r['latency']['p50_ms']} ms, p90 {r['latency']['p90_ms']} ms, p99 "
            f"{r['latency']['p99_ms']} ms; {r['connects']} connects, refused "
            f"{r['connect_refusals'] or 'never'}</p>"
        )
        parts.append(
            f"<p>checker: <b class='{c['verdict']}'>{c['verdict']}</b> in {c['seconds']} s, "
            f"{c['checked_calls']} calls checked, {c['explored_states']} states explored, "
            f"partitions {c['partitions']} (largest {c['largest_partition']} calls)</p>"
        )
        for u in c["unknown"]:
            parts.append(f"<p class='unknown'>unknown: {html.escape(u)}</p>")
        for a in c["anomalies"]:
            parts.append(
                f"<h3 class='anomaly'>anomaly: {html.escape(a['kind'])}</h3>"
                f"<pre>{html.escape(a['message'])}</pre>"
            )
        per_second = r["throughput_per_second"]
        parts.append("<h3>Throughput over time</h3>")
        parts.append(_svg_line(list(enumerate(per_second)), "second", "calls completed per second"))
        parts.append("<h3>Per operation</h3>")
        parts.append(
            _table(
                ["operation", "calls", "ok", "errors", "aborts", "calls/s", "p50", "p90", "p99"],
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
        )
        parts.append("<h3>Aborts by SQLSTATE</h3>")
        parts.append(
            _table(["SQLSTATE", "calls"], list(r["aborts"].items()))
            if r["aborts"]
            else "<p>none</p>"
        )
        parts.append("<h3>Domain errors (expected outcomes, checked by the model)</h3>")
        parts.append(_table(["SQLSTATE kind", "calls"], list(r["errors"].items())))
    return "\n".join(parts) + "\n"


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
            f"{c['explored_states']} states, partitions {c['partitions']}, largest "
            f"{c['largest_partition']})"
        )
        for u in c["unknown"]:
            lines.append(f"  unknown: {u}")
        for a in c["anomalies"]:
            lines.append(f"  ANOMALY {a['kind']}: {a['message']}")
    lines.append(f"verdict: {doc['verdict']}")
    return "\n".join(lines)
