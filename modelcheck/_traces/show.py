"""A failure trace as one self-contained HTML page (inline CSS, no network).

One lane (column) per connection, one row per event in order: statements with their
arguments and outcomes, ``BEGIN``s, commits and rollbacks; blocked waits, aborted
transactions, errors and the failing step are coloured; the diff closes the page.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any, Final

from modelcheck._traces import trace as _trace

_CSS: Final = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.3em; } table { border-collapse: collapse; }
th, td { border: 1px solid #ccc; padding: 3px 6px; vertical-align: top; }
th { background: #eee; position: sticky; top: 0; }
td.num { color: #888; text-align: right; }
code, pre { font-family: ui-monospace, monospace; font-size: 12px; }
pre { background: #f6f6f6; padding: .8em; overflow-x: auto; white-space: pre-wrap; }
.ok { background: #eef8ee; } .error { background: #fff1dc; }
.blocked { background: #fff9b0; } .aborted { background: #ffd9d9; }
.begin { background: #e6eefc; } .pending { background: #f3f3f3; font-style: italic; }
.failing { outline: 3px solid #d00; } .sql { color: #555; display: block; }
.legend span { padding: 2px 6px; margin-right: .5em; border: 1px solid #ccc; }
"""


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _args(step: Mapping[str, Any]) -> str:
    return ", ".join(repr(a) for a in _trace.decode(step["args"]))


def step_label(step: Mapping[str, Any]) -> str:
    """How a step reads on the page (and in tests that look for it)."""
    return f"{step['number']}. {step['operation']}({_args(step)})"


def _classes(step: Mapping[str, Any], failing: int | None) -> str:
    classes = []
    if step["aborted"]:
        classes.append("aborted")
    elif step["blocked"]:
        classes.append("blocked")
    elif step["pending"]:
        classes.append("pending")
    elif step["sqlstate"] or str(step["outcome"]).startswith("error"):
        classes.append("error")
    else:
        classes.append("ok")
    if step["number"] == failing:
        classes.append("failing")
    return " ".join(classes)


def render(trace: Mapping[str, Any]) -> str:
    """The page for one trace."""
    lanes = max(int(trace.get("connections") or 1), 1)
    steps = {s["number"]: s for s in trace["steps"]}
    failure = trace["failure"]
    failing = failure.get("step")
    rows: list[str] = []
    for event in trace.get("events") or [{"event": "step", "number": n} for n in sorted(steps)]:
        cells = ["<td></td>"] * lanes
        if event["event"] == "begin":
            lane = event["connection"]
            cells[lane] = f'<td class="begin">BEGIN {_esc(event["level"].upper())}</td>'
            rows.append(f'<tr><td class="num"></td>{"".join(cells)}</tr>')
            continue
        step = steps[event["number"]]
        sql = f'<code class="sql">{_esc(step["sql"])}</code>' if step.get("sql") else ""
        cells[step["connection"]] = (
            f'<td class="{_classes(step, failing)}" data-step="{step["number"]}">'
            f"<code>{_esc(step_label(step))}</code>{sql}"
            f"&rarr; {_esc(step['outcome'])}</td>"
        )
        rows.append(f'<tr><td class="num">{step["number"]}</td>{"".join(cells)}</tr>')
    header = "".join(f"<th>connection c{i}</th>" for i in range(lanes))
    timeline = ""
    if trace.get("timeline"):
        lines = "\n".join(f"{n:>4}  c{c}  {text}" for n, c, text in trace["timeline"])
        timeline = f"<h2>Timeline as recorded</h2><pre>{_esc(lines)}</pre>"
    target, machine = trace["target"], trace["machine"]
    title = f"{machine['qualname']} on {target['name']}: {failure['heading']} {failure['where']}"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{_esc(title)}</title><style>{_CSS}</style></head>
<body>
<h1>{_esc(title)}</h1>
<p>machine <code>{_esc(machine["module"])}.{_esc(machine["qualname"])}</code>,
target <code>{_esc(target["name"])}</code> (spec <code>{_esc(target["spec"])}</code>),
seed <code>{_esc(trace["seed"])}</code>, profile <code>{_esc(trace["profile"])}</code>,
PostgreSQL <code>{_esc(trace.get("postgres"))}</code>, {len(steps)} steps.</p>
<p class="legend"><span class="ok">ok</span><span class="error">error</span>
<span class="blocked">blocked</span><span class="aborted">aborted</span>
<span class="pending">pending</span><span class="begin">BEGIN</span>
<span class="failing">failing step</span></p>
<table><thead><tr><th>step</th>{header}</tr></thead><tbody>
{chr(10).join(rows)}
</tbody></table>
{timeline}
<h2>{_esc(failure["heading"])} {_esc(failure["where"])}</h2>
<pre class="diff">{_esc(failure["detail"])}</pre>
</body></html>
"""
