"""The timeline engine on synthetic calls: lanes, bars over real time, highlights, windows.

Pure HTML and SVG, no browser (tests/test_pages_browser.py renders the pages).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import attrs

from modelcheck import _timeline
from modelcheck._linearize import Call as HistoryCall
from modelcheck._linearize import check_history, render_html, timeline_calls
from modelcheck.spec import OperationError
from modelcheck.suites.ledger.spec import LEDGER, Account, LedgerState

SVG = "{http://www.w3.org/2000/svg}"


def _bars(svg: str) -> list[ET.Element]:
    root = ET.fromstring(svg)
    return [g for g in root.iter(f"{SVG}g") if "call" in g.get("class", "").split()]


def test_one_lane_per_worker_and_bars_placed_by_time() -> None:
    calls = [
        _timeline.Call(3, 1.0, 2.0, "put(x)", "ok"),
        _timeline.Call(0, 0.0, 1.0, "get(x)", "error"),
        _timeline.Call(3, 2.5, 4.0, "put(y)", "aborted", highlighted=True, index=7),
    ]
    svg = _timeline.svg(calls)
    root = ET.fromstring(svg)
    lanes = [g.get("data-worker") for g in root.iter(f"{SVG}g") if g.get("class") == "lane"]
    assert lanes == ["0", "3"]
    assert root.get("data-lanes") == "2"
    bars = _bars(svg)
    assert len(bars) == 3
    rects = {b.get("class"): b.find(f"{SVG}rect") for b in bars}
    ok, error = rects["call ok"], rects["call error"]
    assert ok is not None
    assert error is not None
    # The call that started later is drawn further right; widths follow durations.
    assert float(ok.get("x", 0)) > float(error.get("x", 0))
    highlighted = [b for b in bars if "highlighted" in b.get("class", "")]
    assert [b.get("data-index") for b in highlighted] == ["7"]
    assert highlighted[0].find(f"{SVG}rect").get("stroke") == "#111"  # type: ignore[union-attr]
    # The other bars are dimmed when something is highlighted.
    assert all(b.get("opacity") == ".45" for b in bars if b not in highlighted)


def test_hover_text_is_the_whole_detail_and_colours_follow_outcomes() -> None:
    long = "x" * 500
    calls = [
        _timeline.Call(0, 0.0, 1.0, "put", "ok", detail=f"put({long!r})"),
        _timeline.Call(1, 0.0, 1.0, "get", "unknown"),
    ]
    bars = _bars(_timeline.svg(calls))
    titles = [b.findtext(f"{SVG}title") for b in bars]
    assert f"put({long!r})" in titles
    fills = {b.get("class"): b.find(f"{SVG}rect").get("fill") for b in bars}  # type: ignore[union-attr]
    assert fills["call ok"] == _timeline.COLOURS["ok"]
    assert fills["call unknown"] == "url(#hatch)"


def test_window_keeps_every_highlighted_call_and_says_what_it_left_out() -> None:
    calls = [
        _timeline.Call(i % 4, i * 0.01, i * 0.01 + 0.02, f"c{i}", "ok", highlighted=i in (500, 510))
        for i in range(1000)
    ]
    shown, note = _timeline.window(list(reversed(calls)))
    # The 11 calls from the first highlighted to the last, and 24 either side.
    assert [c.label for c in shown] == [f"c{i}" for i in range(476, 535)]
    assert note == "showing 59 of 1000 calls (around the highlighted calls, by start time)"
    narrow, _ = _timeline.window(calls, limit=31)
    assert [c.label for c in narrow] == [f"c{i}" for i in range(490, 521)]
    wide = [attrs.evolve(c, highlighted=c.label in ("c0", "c999")) for c in calls]
    assert len(_timeline.window(wide, limit=50)[0]) == 1000  # highlighted calls stay
    assert [c.label for c in _timeline.window(calls[:300], limit=100)[0]][
        -1
    ] == "c99"  # nothing highlighted: the first ones
    few, none = _timeline.window(calls[:10])
    assert len(few) == 10
    assert none == ""


def test_calls_table_lists_highlighted_calls_by_start_time() -> None:
    calls = [
        _timeline.Call(1, 2.0, 3.0, "b", "ok", True, "second", 20),
        _timeline.Call(0, 1.0, 2.5, "a", "error", True, "first", 11),
        _timeline.Call(0, 0.0, 0.5, "z", "ok", False, "not involved", 1),
    ]
    table = _timeline.calls_table(calls, origin=0.0)
    assert table.index("first") < table.index("second")
    assert "not involved" not in table


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href") and value:
                self.links.append(value)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _history() -> tuple[list[HistoryCall], LedgerState]:
    history = [
        HistoryCall(0, 0, "open_account", ("ann",), 0.0, 1.0, 1),
        HistoryCall(1, 1, "deposit", ("ann", 5), 2.0, 4.0, 15),
        HistoryCall(2, 2, "deposit", ("ann", 10), 3.0, 5.0, 10),
        HistoryCall(3, 0, "balance", ("ann",), 6.0, 7.0, 10),  # stale: both deposits ended
        HistoryCall(4, 1, "deposit", ("ann", 1), 6.5, 7.5, OperationError("x", "40P01")),
    ]
    return history, LedgerState({"ann": Account(1, 15)}, ())


def test_the_generic_stress_history_page_names_the_anomaly_and_highlights_it() -> None:
    history, final = _history()
    verdict = check_history(LEDGER, history, final)
    assert verdict.outcome == "anomaly"
    assert 3 in verdict.stuck
    assert verdict.prefix
    bars = {c.index: c for c in timeline_calls(LEDGER, history, verdict)}
    assert bars[3].highlighted
    assert bars[4].outcome in ("aborted", "error")
    page = render_html(LEDGER, history, verdict)
    parser = _Page()
    parser.feed(page)
    text = "".join(parser.text)
    assert "ANOMALY: not linearizable" in text
    assert parser.links == []  # self-contained
    svg = page[page.index("<svg") : page.index("</svg>") + 6]
    assert ET.fromstring(svg).get("data-lanes") == "3"
    assert [b.get("data-index") for b in _bars(svg) if "highlighted" in b.get("class", "")]


def test_a_passing_history_highlights_nothing() -> None:
    history, final = _history()
    history[3] = HistoryCall(3, 0, "balance", ("ann",), 6.0, 7.0, 15)
    verdict = check_history(LEDGER, history, final)
    assert verdict.outcome == "pass"
    assert not any(c.highlighted for c in timeline_calls(LEDGER, history, verdict))
    assert "PASS" in render_html(LEDGER, history, verdict)
