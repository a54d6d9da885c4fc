"""The trace page without a browser: the failing step and the diff first, quiet steps
folded, lanes only for connections that took a step, long values whole on demand."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

from _pages import LONG, concurrency_trace

from modelcheck import diff
from modelcheck._traces import trace as _trace
from modelcheck._traces.show import render, step_label
from modelcheck.machine import Step, compare_outcome
from modelcheck.spec import OperationError


class _Page(HTMLParser):
    """Text in document order, with the tags open around it."""

    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self.stack: list[str] = []
        self.in_details: list[str] = []
        self.headers: list[str] = []
        self.links: list[str] = []
        self._th = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.links += [v for k, v in attrs if k == "src" and v]
        self.stack.append(tag)
        self._th = tag == "th"

    def handle_endtag(self, tag: str) -> None:
        while self.stack and self.stack.pop() != tag:
            pass
        self._th = False

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._th:
            self.headers.append(data)
        if "details" in self.stack and "summary" not in self.stack:
            self.in_details.append(data)


def _parse(trace: dict[str, Any]) -> tuple[str, _Page]:
    page = render(trace)
    parser = _Page()
    parser.feed(page)
    assert parser.links == []
    return page, parser


def test_the_failing_step_and_the_whole_diff_come_before_the_steps() -> None:
    trace = concurrency_trace()
    page, parser = _parse(trace)
    text = "".join(parser.text)
    failing = trace["steps"][-1]
    first_label = text.index(step_label(failing))
    assert first_label < text.index("Steps")
    assert text.index(trace["failure"]["full_detail"]) < text.index("Steps")
    assert trace["failure"]["detail"] not in text  # the cut diff gives way to the whole one
    assert 'id="failing-step"' in page


def test_quiet_steps_fold_into_one_expandable_row() -> None:
    page, parser = _parse(concurrency_trace(verifies=11))
    text = "".join(parser.text)
    assert "steps 2\u201312: 11 steps that changed nothing (verify \u00d711)" in text
    assert page.count('<tr class="fold">') == 1
    # Folded, each step is still on the page, inside the <details>.
    assert "".join(parser.in_details).count("verify()") == 11


def test_short_runs_and_old_traces_without_reads_only() -> None:
    trace = concurrency_trace(verifies=2)
    assert '<tr class="fold">' not in render(trace)
    old = concurrency_trace(verifies=5)
    for s in old["steps"]:
        del s["reads_only"]
    # Without the field only repeats of one call fold; the verifies are identical.
    assert render(old).count('<tr class="fold">') == 1


def test_lanes_only_for_connections_that_took_a_step() -> None:
    _, parser = _parse(concurrency_trace())
    assert [h for h in parser.headers if h.startswith("connection")] == [
        "connection c0",
        "connection c1",
    ]
    assert "Connections c2, c3 took no step and are not drawn." in "".join(parser.text)


def test_a_long_value_opens_to_its_whole_text() -> None:
    page, parser = _parse(concurrency_trace())
    assert repr(LONG) in "".join(parser.in_details)
    assert '<details class="value">' in page


def test_lone_surrogates_in_arguments_still_render() -> None:
    trace = concurrency_trace(verifies=0)
    trace["steps"][0]["sql"] = "SELECT '\ud800'"
    page = render(trace)
    page.encode("utf-8")
    assert "\\ud800" in page


def test_the_whole_diff_a_trace_keeps_cuts_nothing() -> None:
    model, db = {"message": LONG}, {"message": "x"}
    assert "…" in diff.render(model, db)
    whole = diff.render(model, db, limit=None, width=None)
    assert whole == f"  ['message']: model={LONG!r} db='x'"
    many = {str(n): n for n in range(30)}
    assert len(diff.render(many, {}, limit=None).splitlines()) == 30


def test_a_result_cut_for_the_message_is_kept_whole_for_the_page() -> None:
    result = {"checksum": "f" * 300}
    short = compare_outcome(None, OperationError("ddl", "42P07"), result, None, _never, ())
    whole = compare_outcome(
        None, OperationError("ddl", "42P07"), result, None, _never, (), width=None
    )
    assert short[1].endswith("…")
    assert whole[1] == f"db:    ok {result!r}"
    cut = Step(1, 0, "apply_migration", (), repr(result)[:159] + "…", full_outcome=repr(result))
    assert _trace._full_outcome(cut) == {"full_outcome": repr(result)}
    assert _trace._full_outcome(Step(1, 0, "log", (), "None", full_outcome="None")) == {}
    trace = concurrency_trace(verifies=0)
    trace["steps"][-1].update(outcome=cut.outcome, full_outcome=repr(result))
    _, parser = _parse(trace)
    assert repr(result) in "".join(parser.in_details)


def _never(expected: Any, actual: Any, args: tuple[Any, ...]) -> list[str]:
    raise AssertionError("errors are compared before results")
