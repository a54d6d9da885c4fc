"""Both HTML pages in a real headless browser: what a reader sees on the first screen.

Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them when it can).
Without them, or without selenium, every test here skips with one line saying so.
Screenshots go to ``.modelcheck/screenshots/`` (``$MODELCHECK_SCREENSHOTS`` to choose).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _pages import concurrency_trace, stress_run

from modelcheck._traces.show import render
from modelcheck.suites.vstore.stress import report

WIDTH, HEIGHT = 1280, 800


def _missing() -> str | None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install modelcheck[test])"
    for name in ("chromium", "chromedriver"):
        if shutil.which(name) is None:
            return f"no {name} on PATH (apt-get install chromium chromium-driver)"
    return None


_MISSING = _missing()
if _MISSING:  # one line in the summary for the whole module, not one per test
    pytest.skip(f"headless browser checks skipped: {_MISSING}", allow_module_level=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = shutil.which("chromium") or "chromium"
    # The flags Debian's chromium needs as root on a machine with no network.
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        f"--window-size={WIDTH},{HEIGHT}",
    ):
        options.add_argument(flag)
    from selenium.common.exceptions import WebDriverException

    try:
        driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    except WebDriverException as exc:  # installed but unusable here (no display libs, ...)
        pytest.skip(f"headless browser checks skipped: chromium did not start: {exc.msg}")
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def shots() -> Path:
    folder = Path(os.environ.get("MODELCHECK_SCREENSHOTS") or ".modelcheck/screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _open(browser: Any, page: str, path: Path, width: int = WIDTH) -> None:
    path.write_text(page, encoding="utf-8")
    browser.set_window_size(width, HEIGHT)
    browser.get(path.resolve().as_uri())
    browser.execute_script("window.scrollTo(0, 0)")


def _box(browser: Any, selector: str) -> dict[str, float]:
    box: dict[str, float] = browser.execute_script(
        "var r = document.querySelector(arguments[0]).getBoundingClientRect();"
        "return {top: r.top, bottom: r.bottom, width: r.width, height: r.height};",
        selector,
    )
    return box


def _viewport(browser: Any) -> int:
    return int(browser.execute_script("return window.innerHeight"))


def _no_horizontal_overflow(browser: Any) -> None:
    widths = browser.execute_script(
        "return [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert widths[0] <= widths[1], widths


def test_trace_page_leads_with_the_failing_step_and_the_diff(
    browser: Any, tmp_path: Path, shots: Path
) -> None:
    _open(browser, render(concurrency_trace()), tmp_path / "trace.html")
    browser.save_screenshot(str(shots / "trace-page.png"))
    screen = _viewport(browser)
    assert _box(browser, "section.failure .card")["bottom"] <= screen
    assert _box(browser, "pre.diff")["bottom"] <= screen
    _no_horizontal_overflow(browser)
    text = browser.find_element("css selector", "section.failure").text
    assert "failing step 14 on connection c0" in text
    assert "db='x'" in text  # the whole diff line, not cut
    headers = [h.text for h in browser.find_elements("css selector", "thead th")]
    assert headers == ["#", "connection c0", "connection c1"]


def test_trace_page_folded_steps_open_on_click(browser: Any, tmp_path: Path) -> None:
    _open(browser, render(concurrency_trace()), tmp_path / "trace.html")
    folded = browser.find_elements("css selector", "tr.fold td[data-step]")
    assert folded
    assert not any(cell.is_displayed() for cell in folded)
    browser.find_element("css selector", "tr.fold summary").click()
    assert all(cell.is_displayed() for cell in folded)
    long_value = browser.find_element("css selector", "details.value summary")
    long_value.click()
    opened = browser.find_element("css selector", "details.value[open]")
    assert "a commit message " * 30 in opened.text + " "


def test_trace_page_fits_a_narrow_window(browser: Any, tmp_path: Path) -> None:
    _open(browser, render(concurrency_trace()), tmp_path / "trace.html", width=760)
    _no_horizontal_overflow(browser)


def _stress_page() -> str:
    doc = report.document([stress_run()], seed=3)
    return report.render_html(json.loads(json.dumps(doc)))


def test_stress_page_shows_the_anomaly_and_its_timeline_first(
    browser: Any, tmp_path: Path, shots: Path
) -> None:
    _open(browser, _stress_page(), tmp_path / "stress.html")
    browser.save_screenshot(str(shots / "stress-timeline.png"))
    screen = _viewport(browser)
    banner = browser.find_element("css selector", ".banner.anomaly")
    assert banner.text.startswith("ANOMALY")
    assert _box(browser, ".banner")["bottom"] <= screen
    svg = _box(browser, "svg.timeline")
    assert svg["top"] < screen
    assert svg["width"] > WIDTH / 2
    _no_horizontal_overflow(browser)
    lanes = browser.find_elements("css selector", "svg.timeline g.lane")
    assert len(lanes) == 3
    highlighted = browser.find_elements("css selector", "svg.timeline g.call.highlighted")
    assert len(highlighted) == 2
    assert all(bar.is_displayed() and bar.size["width"] > 0 for bar in highlighted)


def test_stress_page_clicking_a_bar_shows_its_call(browser: Any, tmp_path: Path) -> None:
    _open(browser, _stress_page(), tmp_path / "stress.html")
    bar = browser.find_element("css selector", 'svg.timeline g.call[data-index="20"] rect')
    bar.click()
    picked = browser.find_element("css selector", "#picked").text
    assert picked.startswith("#20 worker 1")
    assert "commit('g0_b1', 'w1 n20')" in picked


def test_stress_page_fits_a_narrow_window(browser: Any, tmp_path: Path) -> None:
    _open(browser, _stress_page(), tmp_path / "stress.html", width=760)
    _no_horizontal_overflow(browser)
