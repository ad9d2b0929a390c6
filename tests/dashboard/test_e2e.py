"""End to end in headless Chromium: `toptune dashboard` serves every page, and a run launched from the
form executes in the background worker and shows up finished in the runs table.

Screenshots of each page go to this test's temporary folder (printed on failure by pytest).
"""

import pytest

from tests.support import browser
from toptune.store import Store

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not browser.CHROMIUM.exists(),
                       reason="needs Debian's chromium (apt-get install chromium chromium-driver; CI installs it)"),
]
RUN_TIMEOUT_MS = 240_000


def _no_exceptions(page, name):
    assert browser.exceptions(page) == [], f"{name}: {browser.exceptions(page)}"


def _select(page, label: str, option: str) -> None:
    page.get_by_test_id("stSelectbox").filter(has_text=label).first.click()
    page.get_by_role("option", name=option, exact=True).click()
    browser.settle(page)


def _query(page, sql: str) -> None:
    area = page.get_by_label("Query")
    area.fill(sql)
    area.press("Control+Enter")  # commits the text before the click, so the run sees it
    browser.settle(page)
    page.get_by_role("button", name="Run query").click()
    browser.settle(page)


def _launch_a_small_run(page) -> None:
    _select(page, "Classifier", "ridge")
    page.get_by_label("max_train", exact=True).fill("40")
    page.get_by_label("max_test", exact=True).fill("20")
    page.get_by_role("button", name="Queue run").click()
    page.get_by_text("Queued job").wait_for()
    # The jobs panel polls the job's progress file until the worker records the run; its card links to it.
    page.get_by_role("link", name="open run").wait_for(timeout=RUN_TIMEOUT_MS)


def test_every_page_and_a_launched_run_in_a_real_browser(tmp_path):
    store = tmp_path / "e2e.duckdb"
    shots = tmp_path / "screenshots"
    shots.mkdir()
    with browser.dashboard(store, tmp_path / "server.log") as url, browser.chromium() as page:
        for name in ("runs", "run_comparison", "compare", "clustering", "sweeps", "launch", "sql", "plugins"):
            browser.open_page(page, url, name)
            _no_exceptions(page, name)
            browser.screenshot(page, shots / f"{name}-empty.png")
        assert page.get_by_text("plugins from").count() == 1

        browser.open_page(page, url, "launch")
        _launch_a_small_run(page)
        browser.screenshot(page, shots / "launch-finished.png")
        (run,) = Store(store).runs()
        assert run["status"] == "finished" and (run["n_train"], run["n_test"]) == (40, 20)
        assert run["classifier"] == "ridge"

        browser.open_page(page, url, "runs")
        page.get_by_text("finished 1").wait_for()
        _no_exceptions(page, "runs")
        browser.screenshot(page, shots / "runs.png")

        # A filter goes into the URL and stays chosen on the next page (shared filters, shareable views).
        page.get_by_test_id("stMultiSelect").filter(has_text="Classifier").click()
        page.get_by_role("option", name="ridge", exact=True).click()
        page.keyboard.press("Escape")
        browser.settle(page)
        assert "classifier=ridge" in page.url
        page.get_by_role("link", name="Compare", exact=True).click()
        browser.settle(page)
        assert "/compare" in page.url and "classifier=ridge" in page.url
        assert page.get_by_test_id("stMultiSelect").filter(has_text="Classifier").get_by_text("ridge").count() == 1

        browser.open_page(page, url, "runs", f"?run={run['id']}")
        page.get_by_test_id("stMetric").filter(has_text=f"{run['accuracy']:.4f}").wait_for()
        _no_exceptions(page, "run detail")
        browser.screenshot(page, shots / "run-detail.png")

        browser.open_page(page, url, "compare")
        assert page.locator(".js-plotly-plot").count() >= 3  # trade-off scatter and the ablations
        _no_exceptions(page, "compare")
        browser.screenshot(page, shots / "compare.png")

        browser.open_page(page, url, "sql")
        _query(page, "SELECT status, n_train FROM runs")
        page.get_by_text("1 row(s)").wait_for()
        assert "sql=" in page.url  # the query is part of the shareable URL
        _query(page, "DROP TABLE runs")
        page.get_by_text("only read-only queries").wait_for()
        _no_exceptions(page, "sql")
        browser.screenshot(page, shots / "sql.png")
    assert len(Store(store).runs()) == 1
