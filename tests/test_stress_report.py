"""The stress report page from a synthetic run: the anomaly in words at the top, a
timeline of its partition with the involved calls outlined, figures as tables."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

from _pages import stress_run

from modelcheck.suites.vstore.stress import report
from modelcheck.suites.vstore.stress.checker import (
    Anomaly,
    CheckResult,
    PartitionResult,
    _with_calls,
)

SVG = "{http://www.w3.org/2000/svg}"


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.links += [v for k, v in attrs if k in ("src", "href") and v]

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _page() -> tuple[str, str]:
    doc = report.document([stress_run()], seed=3)
    page = report.render_html(json.loads(json.dumps(doc)))  # as read back from --report
    parser = _Text()
    parser.feed(page)
    assert parser.links == []
    return page, " ".join(" ".join(parser.text).split())


def test_the_anomaly_is_named_in_words_before_anything_else() -> None:
    _, text = _page()
    assert text.index("ANOMALY") < text.index("Per operation")
    assert "Not linearizable (no_serial_order)" in text
    assert "Lost update (fork)" in text
    assert "two commits of one branch have the same first parent" not in text.split("ANOMALY")[0]


def test_one_timeline_of_the_partition_with_the_involved_calls_outlined() -> None:
    page, _ = _page()
    svgs = [page[i : page.index("</svg>", i) + 6] for i in _starts(page, '<svg class="timeline"')]
    assert len(svgs) == 1  # the fork names no calls: no timeline of its own
    root = ET.fromstring(svgs[0])
    lanes = [g.get("data-worker") for g in root.iter(f"{SVG}g") if g.get("class") == "lane"]
    assert lanes == ["0", "1", "2"]  # the partition's workers; worker 3 is elsewhere
    bars = [g for g in root.iter(f"{SVG}g") if "call" in g.get("class", "").split()]
    classes = {g.get("data-index"): g.get("class", "").split() for g in bars}
    assert classes["20"][-1] == classes["11"][-1] == "highlighted"
    assert "aborted" in classes["21"]
    assert "error" in classes["18"]
    assert "unknown" in classes["19"]
    assert "30" not in classes


def test_calls_are_listed_by_start_time_and_summaries_are_tables() -> None:
    page, text = _page()
    table = page[page.index('<table class="calls">') :]
    assert table.index("#11 worker 0") < table.index("#20 worker 1")
    assert "{'pass'" not in page
    assert "'anomaly':" not in page
    assert "partitions with an anomaly 1" in text
    assert "partitions passed 1" in text


def test_the_json_report_carries_what_the_page_draws() -> None:
    doc = report.document([stress_run()], seed=3)
    (timeline,) = doc["runs"][0]["timelines"]
    assert [c["index"] for c in timeline["calls"]] == [11, 18, 19, 20, 21]
    assert [c["index"] for c in timeline["calls"] if c["highlighted"]] == [11, 20]
    assert timeline["kind"] == "no_serial_order"


def test_a_passing_run_draws_its_largest_partition() -> None:
    run, _ = stress_run()
    check = CheckResult(
        "pass",
        [
            PartitionResult(("branch:g0_b1",), (11, 18, 19, 20, 21), "pass", 12),
            PartitionResult(("branch:g1",), (30,), "pass", 1),
        ],
        [],
        [],
        0.1,
        5,
    )
    doc = report.document([(run, check)], seed=3)
    (timeline,) = doc["runs"][0]["timelines"]
    assert len(timeline["calls"]) == 5
    assert not any(c["highlighted"] for c in timeline["calls"])
    assert "PASS" in report.render_html(doc)
    assert "partitions: pass: 2, anomaly: 0, unknown: 0" in report.text_summary(doc)


def _starts(text: str, needle: str) -> list[int]:
    out, at = [], text.find(needle)
    while at != -1:
        out.append(at)
        at = text.find(needle, at + 1)
    return out


def test_a_fork_outlines_the_commits_that_forked() -> None:
    run, check = stress_run()
    fork = Anomaly("fork", "branch 'g0_b1' forked", subjects=("c1", "c9"))
    found = _with_calls(fork, run.history, check.partitions)
    assert found.calls == (20,)  # the call that returned c1; c9 was never returned
    assert found.partition == (11, 18, 19, 20, 21)
    assert _with_calls(Anomaly("version", "v"), run.history, check.partitions).calls == ()
