"""In headless Chromium: the Robustness and Selection pages before any study exists, then with studies.

One dashboard serves a store path that is empty at first and filled (in this process) half-way; the
pages only read the store, so the server needs none of the test's in-process plugins.
"""

import pytest

from tests.support import browser
from tests.support.research import fill_studies

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not browser.CHROMIUM.exists(),
                       reason="needs Debian's chromium (apt-get install chromium chromium-driver; CI installs it)"),
]
PAGES = {"robustness": "Accuracy vs awgn strength", "selection": "Accuracy per rule and subset size"}


def test_research_pages_render_without_and_with_studies(tmp_path):
    store = tmp_path / "research.duckdb"
    with browser.dashboard(store, tmp_path / "server.log") as url, browser.chromium() as page:
        for name in PAGES:
            browser.open_page(page, url, name)
            page.get_by_text("No store at").wait_for()
            assert browser.exceptions(page) == [] and page.locator(".js-plotly-plot").count() == 0
        fill_studies(store, tmp_path / "features")
        for name, heading in PAGES.items():
            browser.open_page(page, url, name)
            page.get_by_text(heading).wait_for()
            page.locator(".js-plotly-plot").first.wait_for()
            assert browser.exceptions(page) == [], browser.exceptions(page)
            browser.screenshot(page, tmp_path / f"{name}.png")
