"""A failure trace as one self-contained HTML page (inline CSS, no network).

What a reader wants first is what failed: the page opens with the failing step and the
diff, then the steps in order, one lane (column) per connection that took part
(connections that took no step are not drawn). Runs of steps that changed nothing
(reads, in the trace's ``reads_only``) fold into one expandable row. Nothing is cut
without a way to see it whole: long values open in place, and the diff is the trace's
full one when it holds it (``failure.full_detail``).
"""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, Final

from modelcheck._traces import trace as _trace

#: Longer values show their start and open in place to show the rest.
VALUE_LIMIT: Final = 160
#: This many quiet steps in a row fold into one row.
FOLD_AT: Final = 3

_CSS: Final = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 0 auto; padding: 1em 1.5em; color: #222;
       max-width: 1280px; }
h1 { font-size: 1.3em; margin: .2em 0 .3em; } h2 { font-size: 1.1em; margin: 1.2em 0 .4em; }
.meta { color: #555; margin: 0 0 .8em; }
.failure { border-left: 6px solid #c62828; background: #fdecea; padding: .6em 1em;
           border-radius: 6px; }
.failure h2 { margin: .2em 0 .4em; color: #8e1b1b; }
.failure .card { background: #fff; border: 1px solid #e3b4b4; border-radius: 4px;
                 padding: .4em .7em; margin-bottom: .6em; }
table { border-collapse: collapse; width: 100%; table-layout: fixed; }
th, td { border: 1px solid #ccc; padding: 3px 6px; vertical-align: top; text-align: left;
         overflow-wrap: anywhere; }
th { background: #eee; position: sticky; top: 0; z-index: 1; }
th.num, td.num { width: 3.2em; color: #888; text-align: right; }
code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 12px; }
pre { background: #fff; border: 1px solid #e3b4b4; padding: .7em; white-space: pre-wrap;
      overflow-wrap: anywhere; margin: 0; }
pre.plain { background: #f6f6f6; border-color: #ddd; }
.ok { background: #eef8ee; } .error { background: #fff1dc; }
.blocked { background: #fff9b0; } .aborted { background: #ffd9d9; }
.begin { background: #e6eefc; } .pending { background: #f3f3f3; font-style: italic; }
td.failing { outline: 3px solid #d00; outline-offset: -3px; }
.sql { display: block; } .sql code { color: #666; font-size: 11px; }
.legend span { padding: 1px 6px; margin-right: .4em; border: 1px solid #ccc; font-size: 13px; }
.legend span.failing { outline: 3px solid #d00; outline-offset: -3px; }
tr.fold > td { background: #fafafa; padding: 0; }
tr.fold summary { padding: 3px 6px; color: #555; cursor: pointer; }
tr.fold table { border: 0; }
details.value { display: inline; }
details.value summary { display: inline; cursor: pointer; list-style: none; }
details.value summary::-webkit-details-marker { display: none; }
details.value summary::after { content: " show all"; color: #1565c0; font-family: system-ui;
                               font-size: 12px; white-space: nowrap; }
details.value[open] summary { display: none; }
.note { color: #666; }
"""


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _value(text: str, limit: int = VALUE_LIMIT) -> str:
    """``text`` as code; past ``limit`` characters its start, opening to the whole."""
    if len(text) <= limit:
        return f"<code>{_esc(text)}</code>"
    return (
        f'<details class="value"><summary><code>{_esc(text[: limit - 1])}…</code></summary>'
        f"<code>{_esc(text)}</code></details>"
    )


def _args(step: Mapping[str, Any]) -> str:
    return ", ".join(repr(a) for a in _trace.decode(step["args"]))


def step_label(step: Mapping[str, Any]) -> str:
    """How a step reads on the page (and in tests that look for it)."""
    return f"{step['number']}. {step['operation']}({_args(step)})"


def _state(step: Mapping[str, Any]) -> str:
    if step.get("aborted"):
        return "aborted"
    if step.get("blocked"):
        return "blocked"
    if step.get("pending"):
        return "pending"
    if step.get("sqlstate") or str(step.get("outcome", "")).startswith("error"):
        return "error"
    return "ok"


def _classes(step: Mapping[str, Any], failing: int | None) -> str:
    return _state(step) + (" failing" if step["number"] == failing else "")


def _cell_body(step: Mapping[str, Any]) -> str:
    sql = f'<span class="sql">{_value(str(step["sql"]))}</span>' if step.get("sql") else ""
    outcome = _value(str(step.get("full_outcome") or step["outcome"]))
    return f"{_value(step_label(step))} &rarr; {outcome}{sql}"


def _quiet(step: Mapping[str, Any], failing: int | None) -> bool:
    """A step that changed nothing and needs no attention: an ok read, not the failure.

    Traces written before ``reads_only`` was recorded fold only repeats of one call.
    """
    return _state(step) == "ok" and step["number"] != failing and bool(step.get("reads_only"))


def _joins(
    prev: Mapping[str, Any] | None, step: Mapping[str, Any] | None, failing: int | None
) -> bool:
    """Whether ``step`` folds into the run that ``prev`` ends."""
    if prev is None or step is None:
        return False
    if "reads_only" in step:
        return _quiet(prev, failing) and _quiet(step, failing)
    same = (prev["operation"], prev["args"], prev["outcome"]) == (
        step["operation"],
        step["args"],
        step["outcome"],
    )
    return same and failing not in (prev["number"], step["number"]) and _state(step) == "ok"


def _groups(
    events: Sequence[Mapping[str, Any]], steps: Mapping[int, Mapping[str, Any]], failing: int | None
) -> list[list[Mapping[str, Any]]]:
    """Events in order, consecutive quiet steps grouped (a group of one is a plain row)."""
    out: list[list[Mapping[str, Any]]] = []
    for event in events:
        step = steps.get(event["number"]) if event["event"] == "step" else None
        last = out[-1][-1] if out else None
        prev = steps.get(last["number"]) if last is not None and last["event"] == "step" else None
        if _joins(prev, step, failing):
            out[-1].append(event)
        else:
            out.append([event])
    return out


def _row(
    event: Mapping[str, Any],
    steps: Mapping[int, Mapping[str, Any]],
    lanes: Sequence[int],
    failing: int | None,
) -> str:
    cells = ["<td></td>"] * len(lanes)
    if event["event"] == "begin":
        cells[lanes.index(event["connection"])] = (
            f'<td class="begin">BEGIN {_esc(event["level"].upper())}</td>'
        )
        return f'<tr><td class="num"></td>{"".join(cells)}</tr>'
    step = steps[event["number"]]
    number = step["number"]
    cells[lanes.index(step["connection"])] = (
        f'<td class="{_classes(step, failing)}" data-step="{number}">{_cell_body(step)}</td>'
    )
    anchor = ' id="failing-step"' if number == failing else ""
    return f'<tr{anchor}><td class="num">{number}</td>{"".join(cells)}</tr>'


def _fold(
    group: Sequence[Mapping[str, Any]],
    steps: Mapping[int, Mapping[str, Any]],
    lanes: Sequence[int],
    failing: int | None,
) -> str:
    numbers = [e["number"] for e in group]
    calls = Counter(steps[n]["operation"] for n in numbers)
    what = ", ".join(f"{_esc(op)} &times;{k}" if k > 1 else _esc(op) for op, k in calls.items())
    inner = "".join(_row(e, steps, lanes, failing) for e in group)
    return (
        f'<tr class="fold"><td colspan="{len(lanes) + 1}"><details><summary>steps '
        f"{numbers[0]}&ndash;{numbers[-1]}: {len(numbers)} steps that changed nothing ({what})"
        f"</summary><table>{_colgroup(lanes)}<tbody>{inner}</tbody></table></details></td></tr>"
    )


def _colgroup(lanes: Sequence[int]) -> str:
    return '<colgroup><col style="width:3.2em">' + "<col>" * len(lanes) + "</colgroup>"


def _failure_section(
    trace: Mapping[str, Any], steps: Mapping[int, Mapping[str, Any]], failing: int | None
) -> str:
    failure = trace["failure"]
    step = steps.get(failing) if failing is not None else None
    if step is not None:
        card = (
            f'<div class="card {_classes(step, failing)}">failing step {step["number"]} on '
            f'connection c{step["connection"]} (<a href="#failing-step">in the steps</a>)'
            f"<br>{_cell_body(step)}</div>"
        )
    else:
        card = '<div class="card">the failure came before the first step</div>'
    detail = failure.get("full_detail") or failure["detail"]
    return (
        f'<section class="failure"><h2>{_esc(failure["heading"])} {_esc(failure["where"])}</h2>'
        f'{card}<pre class="diff">{_esc(detail)}</pre></section>'
    )


def render(trace: Mapping[str, Any]) -> str:
    """The page for one trace."""
    steps = {s["number"]: s for s in trace["steps"]}
    failure = trace["failure"]
    failing = failure.get("step")
    events = trace.get("events") or [{"event": "step", "number": n} for n in sorted(steps)]
    used = {s["connection"] for s in steps.values()}
    lanes = sorted(used) or [0]
    total = max(int(trace.get("connections") or 1), 1)
    hidden = [f"c{i}" for i in range(total) if i not in used]
    events = [e for e in events if e["event"] == "step" or e["connection"] in used]
    rows = []
    for group in _groups(events, steps, failing):
        if len(group) >= FOLD_AT:
            rows.append(_fold(group, steps, lanes, failing))
        else:
            rows += [_row(e, steps, lanes, failing) for e in group]
    header = "".join(f"<th>connection c{i}</th>" for i in lanes)
    unused = (
        f" {'Connection' if len(hidden) == 1 else 'Connections'} {', '.join(hidden)} took no "
        "step and "
        f"{'is' if len(hidden) == 1 else 'are'} not drawn."
        if hidden
        else ""
    )
    timeline = ""
    if trace.get("timeline"):
        lines = "\n".join(f"{n:>4}  c{c}  {text}" for n, c, text in trace["timeline"])
        timeline = (
            "<details><summary>Timeline as recorded</summary>"
            f'<pre class="plain">{_esc(lines)}</pre></details>'
        )
    message = ""
    if failure.get("message"):
        message = (
            "<details><summary>The failure message as printed</summary>"
            f'<pre class="plain">{_esc(failure["message"])}</pre></details>'
        )
    target, machine = trace["target"], trace["machine"]
    title = f"{machine['qualname']} on {target['name']}: {failure['heading']} {failure['where']}"
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_esc(title)}</title><style>{_CSS}</style></head>
<body>
<h1>{_esc(title)}</h1>
<p class="meta">machine <code>{_esc(machine["module"])}.{_esc(machine["qualname"])}</code>,
target <code>{_esc(target["name"])}</code> (spec <code>{_esc(target["spec"])}</code>),
seed <code>{_esc(trace["seed"])}</code>, profile <code>{_esc(trace["profile"])}</code>,
PostgreSQL <code>{_esc(trace.get("postgres"))}</code>, {len(steps)} steps.</p>
{_failure_section(trace, steps, failing)}
<h2>Steps</h2>
<p class="legend"><span class="ok">ok</span><span class="error">error</span>
<span class="blocked">blocked</span><span class="aborted">aborted</span>
<span class="pending">pending</span><span class="begin">BEGIN</span>
<span class="failing">failing step</span></p>
<p class="note">One column per connection, one row per event in order.{unused}
Runs of {FOLD_AT} or more steps that changed nothing are folded: open them to see each.</p>
<table>{_colgroup(lanes)}<thead><tr><th class="num">#</th>{header}</tr></thead><tbody>
{chr(10).join(rows)}
</tbody></table>
{timeline}
{message}
</body></html>
"""
    # Lone surrogates (hostile string arguments) cannot be written as UTF-8.
    return page.encode("utf-8", "backslashreplace").decode("utf-8")
