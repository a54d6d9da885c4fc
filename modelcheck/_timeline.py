"""Histories drawn the way Porcupine and Elle draw them: one lane per worker, each call
a bar over real time, coloured by outcome, the calls of an anomaly highlighted.

People read linearizability failures from such pictures, not from call lists. This
module knows nothing of any suite: a stress checker turns its history into plain
:class:`Call` rows (worker, start, end, label, outcome, highlighted) and gets back
self-contained HTML and inline SVG (no network, no script libraries; a few lines of
inline script show a clicked call's details).

>>> calls = [Call(0, 0.0, 0.4, "put(x)", "ok"), Call(1, 0.1, 0.3, "get(x)", "ok", True)]
>>> "<svg" in svg(calls)
True
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence
from typing import Final, Literal

import attrs

Outcome = Literal["ok", "error", "aborted", "unknown"]

#: Fill colour per outcome, and what the legend says of it.
COLOURS: Final[dict[str, str]] = {
    "ok": "#59a14f",
    "error": "#f1a340",
    "aborted": "#d9534f",
    "unknown": "#9a9a9a",
}
MEANINGS: Final[dict[str, str]] = {
    "ok": "ok: returned a result",
    "error": "error: an expected error (checked by the model)",
    "aborted": "aborted: rolled back, must have had no effect",
    "unknown": "unknown: connection lost mid-call, effect unknown",
}

_WIDTH: Final = 1200  # viewBox units; the SVG scales to the page's width
_LEFT: Final = 64  # lane labels
_RIGHT: Final = 16
_TOP: Final = 30  # the time axis
_LANE: Final = 26
_BAR: Final = 18
_CHAR: Final = 6.4  # average glyph width at 11px, to decide whether a label fits


@attrs.frozen
class Call:
    """One call as the timeline draws it.

    ``start`` and ``end`` are seconds on one clock (any origin); ``label`` is what the
    bar shows when it is wide enough, ``detail`` the full text on hover and click
    (operation, arguments, result: never cut); ``index`` the history's own number.
    """

    worker: int
    start: float
    end: float
    label: str
    outcome: Outcome
    highlighted: bool = False
    detail: str = ""
    index: int | None = None

    @property
    def text(self) -> str:
        """The hover text: ``detail``, else the label."""
        return self.detail or self.label


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def ordered(calls: Iterable[Call]) -> list[Call]:
    """Calls by start time (then end, then worker): the order a history is read in."""
    return sorted(calls, key=lambda c: (c.start, c.end, c.worker))


def window(calls: Sequence[Call], limit: int = 160, context: int = 24) -> tuple[list[Call], str]:
    """The highlighted calls and ``context`` calls either side, at most ``limit`` in all
    (contiguous in start time); with nothing highlighted, the first ``limit``.

    A history of thousands of calls draws as noise; the highlighted calls and their
    neighbours are what explains an anomaly, drawn wide enough to read. Every
    highlighted call is kept, even past ``limit``. Returns the calls and a sentence
    saying what was left out ('' if nothing).
    """
    rows = ordered(calls)
    marked = [i for i, c in enumerate(rows) if c.highlighted]
    if not marked:
        shown = rows[:limit]
    else:
        lo, hi = marked[0], marked[-1] + 1
        room = max(0, limit - (hi - lo)) // 2
        side = min(context, room)
        shown = rows[max(0, lo - side) : hi + side]
    if len(shown) == len(rows):
        return rows, ""
    where = "around the highlighted calls" if marked else "from the start"
    return shown, f"showing {len(shown)} of {len(rows)} calls ({where}, by start time)"


def _tick_step(span: float, ticks: int = 8) -> float:
    raw = span / ticks
    power = 10.0 ** math.floor(math.log10(raw))
    return next(m * power for m in (1.0, 2.0, 5.0, 10.0) if m * power >= raw)


def _seconds(value: float, step: float) -> str:
    if step < 1:
        return f"{value * 1000:.{max(0, -math.floor(math.log10(step * 1000)))}f} ms"
    return f"{value:.{max(0, -math.floor(math.log10(step)))}f} s"


def svg(calls: Sequence[Call], *, origin: float | None = None, lane_names: str = "w") -> str:
    """The timeline as inline SVG: lanes by worker, bars over real time.

    ``origin`` is the clock reading the axis counts from (default: the first start);
    lanes are named ``<lane_names><worker>`` (``setup`` for negative workers).
    """
    rows = ordered(calls)
    if not rows:
        return '<p class="note">(no calls to draw)</p>'
    workers = sorted({c.worker for c in rows})
    lane_of = {w: n for n, w in enumerate(workers)}
    t0 = min(c.start for c in rows) if origin is None else origin
    first, last = min(c.start for c in rows), max(c.end for c in rows)
    span = max(last - first, 1e-6)
    plot = _WIDTH - _LEFT - _RIGHT
    height = _TOP + len(workers) * _LANE + 8

    def x(t: float) -> float:
        return _LEFT + (t - first) / span * plot

    parts = [
        f'<svg class="timeline" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_WIDTH} '
        f'{height}" width="100%" role="img" font-family="system-ui, sans-serif" '
        f'font-size="11" data-lanes="{len(workers)}">',
        '<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)"><rect width="6" height="6" fill="#bbb"/>'
        '<line x1="0" y1="0" x2="0" y2="6" stroke="#777" stroke-width="2"/></pattern></defs>',
    ]
    step = _tick_step(span)
    tick = math.ceil((first - t0) / step) * step
    while tick <= last - t0 + 1e-12:
        tx = x(t0 + tick)
        parts.append(
            f'<line x1="{tx:.1f}" y1="{_TOP - 6}" x2="{tx:.1f}" y2="{height - 8}" '
            f'stroke="#e4e4e4"/><text x="{tx:.1f}" y="{_TOP - 10}" text-anchor="middle" '
            f'fill="#555">{_seconds(tick, step)}</text>'
        )
        tick += step
    for worker, lane in lane_of.items():
        y = _TOP + lane * _LANE
        name = "setup" if worker < 0 else f"{lane_names}{worker}"
        shade = "#f7f7f7" if lane % 2 else "#ffffff"
        parts.append(
            f'<g class="lane" data-worker="{worker}"><rect x="0" y="{y}" width="{_WIDTH}" '
            f'height="{_LANE}" fill="{shade}"/><text x="{_LEFT - 8}" y="{y + _LANE / 2 + 4}" '
            f'text-anchor="end" fill="#333" font-weight="600">{_esc(name)}</text></g>'
        )
    dim = any(c.highlighted for c in rows)
    for c in sorted(rows, key=lambda c: c.highlighted):  # highlighted bars on top
        bx = x(c.start)
        width = max(x(c.end) - bx, 2.0)
        top = _TOP + lane_of[c.worker] * _LANE + (_LANE - _BAR) / 2
        fill = "url(#hatch)" if c.outcome == "unknown" else COLOURS[c.outcome]
        classes = f"call {c.outcome}" + (" highlighted" if c.highlighted else "")
        stroke = (
            ' stroke="#111" stroke-width="2.5"'
            if c.highlighted
            else ' stroke="#fff" stroke-width=".5"'
        )
        opacity = ' opacity=".45"' if dim and not c.highlighted else ""
        label = next(
            (t for t in (c.label, c.label.split("(")[0]) if len(t) * _CHAR + 6 <= width), ""
        )
        text = (
            f'<text x="{bx + 3:.1f}" y="{top + _BAR / 2 + 4:.1f}" fill="#fff" '
            f'pointer-events="none">{_esc(label)}</text>'
            if label
            else ""
        )
        index = f' data-index="{c.index}"' if c.index is not None else ""
        parts.append(
            f'<g class="{classes}"{index}{opacity}><title>{_esc(c.text)}</title>'
            f'<rect x="{bx:.1f}" y="{top:.1f}" width="{width:.1f}" height="{_BAR}" rx="2" '
            f'fill="{fill}"{stroke}/>{text}</g>'
        )
    parts.append("</svg>")
    return "".join(parts)


def legend(highlight: str = "calls of the anomaly") -> str:
    """The colour key, and what the outlined bars are."""
    items = "".join(
        f'<span><i style="background:{COLOURS[k]}"></i>{_esc(MEANINGS[k])}</span>' for k in COLOURS
    )
    return (
        f'<p class="legend">{items}<span><i class="hl"></i>outlined: {_esc(highlight)}</span></p>'
    )


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain HTML table; numbers right-aligned."""
    head = "".join(f"<th>{_esc(h)}</th>" for h in headers)

    def cell(value: object) -> str:
        numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
        return f'<td class="num">{value}</td>' if numeric else f"<td>{_esc(value)}</td>"

    body = "".join("<tr>" + "".join(cell(v) for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def calls_table(calls: Sequence[Call], *, origin: float | None = None) -> str:
    """The highlighted calls (all calls when none is) as rows, by start time."""
    rows = ordered(c for c in calls if c.highlighted) or ordered(calls)
    if not rows:
        return ""
    t0 = min(c.start for c in rows) if origin is None else origin
    body = "".join(
        f'<tr class="{c.outcome}"><td class="num">{"" if c.index is None else c.index}</td>'
        f'<td class="num">{c.worker}</td><td class="num">{(c.start - t0) * 1000:.1f}</td>'
        f'<td class="num">{(c.end - t0) * 1000:.1f}</td><td>{_esc(c.outcome)}</td>'
        f"<td><code>{_esc(c.text)}</code></td></tr>"
        for c in rows
    )
    return (
        '<table class="calls"><thead><tr><th>#</th><th>worker</th><th>start ms</th>'
        "<th>end ms</th><th>outcome</th><th>call</th></tr></thead>"
        f"<tbody>{body}</tbody></table>"
    )


CSS: Final = """
body { font: 14px/1.45 system-ui, sans-serif; color: #222; margin: 0 auto; padding: 1em 1.5em;
       max-width: 1280px; }
h1 { font-size: 1.35em; margin: .2em 0 .4em; } h2 { font-size: 1.15em; margin: 1.2em 0 .4em; }
h3 { font-size: 1em; margin: 1em 0 .3em; }
.banner { padding: .7em 1em; border-radius: 6px; margin: .5em 0 1em; }
.banner.anomaly { background: #fdecea; border-left: 6px solid #c62828; }
.banner.pass { background: #e8f5e9; border-left: 6px solid #2e7d32; }
.banner.unknown { background: #fff8e1; border-left: 6px solid #b26a00; }
.banner b { font-size: 1.1em; } .banner p { margin: .3em 0 0; }
table { border-collapse: collapse; margin: .4em 0; }
td, th { border: 1px solid #d6d6d6; padding: 2px 8px; vertical-align: top; text-align: left; }
th { background: #f0f0f0; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.calls { width: 100%; table-layout: fixed; }
table.calls th:nth-child(-n+5) { width: 5.5em; }
table.calls td { overflow-wrap: anywhere; } table.calls code { white-space: pre-wrap; }
code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 12px; }
pre { background: #f6f6f6; padding: .7em; white-space: pre-wrap; overflow-wrap: anywhere; }
svg.timeline { display: block; border: 1px solid #ddd; border-radius: 4px; }
svg.timeline g.call { cursor: pointer; }
.legend span { margin-right: 1.2em; white-space: nowrap; font-size: 13px; }
.legend i { display: inline-block; width: 1.6em; height: .9em; margin-right: .35em;
            vertical-align: middle; border-radius: 2px; }
.legend i.hl { border: 2.5px solid #111; box-sizing: border-box; }
.note { color: #666; } #picked { min-height: 1.5em; } .unknown { color: #8a5300; }
.row { display: flex; flex-wrap: wrap; gap: 0 2em; align-items: flex-start; }
details > summary { cursor: pointer; font-weight: 600; margin: .6em 0 .2em; }
tr.aborted td { background: #fbe3e2; } tr.error td { background: #fdf0dc; }
tr.unknown td { background: #eee; }
"""

#: Clicking a bar copies its hover text into the "picked" box (hover alone is slow).
SCRIPT: Final = """
document.addEventListener("click", function (e) {
  var g = e.target.closest && e.target.closest("g.call");
  var box = document.getElementById("picked");
  if (g && box) { box.textContent = g.querySelector("title").textContent; }
});
"""


def banner(verdict: str, headline: str, explanation: str = "") -> str:
    """The verdict at the top of a page, in words."""
    more = f"<p>{_esc(explanation)}</p>" if explanation else ""
    return f'<div class="banner {_esc(verdict)}"><b>{_esc(headline)}</b>{more}</div>'


def picked() -> str:
    """The box a clicked bar's details appear in."""
    return '<pre id="picked" class="note">click a bar for its call; hover shows it too</pre>'


def page(title: str, body: Sequence[str]) -> str:
    """A self-contained HTML document: inline CSS, the inline click script, ``body``."""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_esc(title)}</title><style>{CSS}</style></head>\n<body>\n"
        + "\n".join(body)
        + f"\n<script>{SCRIPT}</script>\n</body></html>\n"
    )


__all__ = [
    "COLOURS",
    "Call",
    "Outcome",
    "banner",
    "calls_table",
    "legend",
    "ordered",
    "page",
    "picked",
    "svg",
    "table",
    "window",
]
