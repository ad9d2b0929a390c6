"""In headless Chromium: Launch queues a run once (Enter does not submit; the same run again waits for a second
click), /runs, the Compare page's verdict cards, the run comparison, and archiving a run from its detail.

Screenshots go to each test's temporary folder.
"""

import pytest
from filelock import FileLock

from tests.support import browser
from tests.support.dashboard import write_comparison
from toptune import jobs
from toptune.store import Store
from toptune.studies import compare as cmp

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not browser.CHROMIUM.exists(),
                       reason="needs Debian's chromium (apt-get install chromium chromium-driver; CI installs it)"),
]


def _no_exceptions(page, name):
    assert browser.exceptions(page) == [], f"{name}: {browser.exceptions(page)}"


def test_launch_queues_once_and_holds_a_duplicate(tmp_path):
    store = tmp_path / "launch.duckdb"
    folder = jobs.jobs_dir(store)
    folder.mkdir(parents=True)
    # Hold the worker's lock: the page sees a worker alive and starts none, so the jobs stay queued.
    with FileLock(str(folder / "worker.lock")), browser.dashboard(store, tmp_path / "server.log") as url, \
            browser.chromium() as page:
        browser.open_page(page, url, "launch")
        page.get_by_test_id("stSelectbox").filter(has_text="Classifier").first.click()
        page.get_by_role("option", name="ridge", exact=True).click()
        browser.settle(page)
        field = page.get_by_label("max_train", exact=True)
        field.fill("40")
        field.press("Enter")  # used to queue a run
        browser.settle(page)
        assert jobs.list_jobs(store) == [] and page.get_by_text("Queued job").count() == 0

        page.get_by_role("button", name="Queue run").click()
        page.get_by_text("Queued job").wait_for()
        (first,) = jobs.list_jobs(store)
        page.get_by_role("button", name="Queue run").click()
        page.get_by_text("identical job is already queued").wait_for()
        browser.settle(page)
        assert len(jobs.list_jobs(store)) == 1
        _no_exceptions(page, "launch")
        browser.screenshot(page, tmp_path / "launch-duplicate.png")

        page.get_by_role("button", name="Queue it again").click()
        page.get_by_text("Queued job").wait_for()
        browser.settle(page)
        assert [j["payload"] for j in jobs.list_jobs(store)] == [first["payload"]] * 2
        assert first["payload"]["params"] == {"max_train": "40"}


def _written(path):
    """Two comparisons (photos at 224 px, digits at 128 px) and three fine-tuning runs with epoch curves."""
    store = Store(path)
    write_comparison(store, "photos", (0.936, 10.0), (0.937, 97.0), folder="/data/photos")
    write_comparison(store, "digits", (0.95, 2.0), (0.90, 20.0), image_size=128)
    runs = []
    for lr, accuracy in ((1e-3, 0.9), (3e-3, 0.8)):
        run_id = store.start_run({"method": "fine-tune", "backbone": "efficientnet_lite0", "dataset": "digits",
                                  "dataset_label": "digits", "seed": 0,
                                  "params": {"run": {"epochs": 3, "lr": lr, "image_size": 128}}})
        store.finish_run(run_id, {"accuracy": accuracy, "train_time_s": 20.0}, epochs=[
            {"epoch": e, "train_loss": lr * 1000 / e, "train_accuracy": accuracy - 0.1 / e,
             "val_accuracy": accuracy - 0.05 / e, "lr": lr, "time_s": 1.0} for e in (1, 2, 3)])
        runs.append(run_id)
    return runs


def _housekeeping(page, press: str, then: str) -> None:
    """Open the run detail's housekeeping, press a button once it is drawn, and wait for the one that replaces it."""
    page.get_by_role("heading", name="Run detail").wait_for()
    page.get_by_text("Name, tags, note, archive, delete").click()
    button = page.get_by_role("button", name=press, exact=True)
    button.wait_for()
    browser.settle(page)
    button.click()
    browser.settle(page)
    page.get_by_role("button", name=then, exact=True).wait_for()


def test_verdict_cards_run_comparison_and_archiving(tmp_path):
    path = tmp_path / "written.duckdb"
    first, second = _written(path)
    cards = cmp.verdict_cards(cmp.comparisons(Store(path)))
    with browser.dashboard(path, tmp_path / "server.log") as url, browser.chromium() as page:
        # /runs is the Runs page (served at the root), not Streamlit's "Page not found"; the query comes along.
        page.goto(f"{url}/runs?run={first}")
        page.wait_for_function("location.pathname === '/'")
        browser.settle(page)
        assert f"run={first}" in page.url and page.get_by_text("Page not found").count() == 0
        page.get_by_role("heading", name="Run detail").wait_for()

        browser.open_page(page, url, "compare")
        for card in cards:
            page.get_by_text(card.text).wait_for()
        assert "photos · efficientnet_lite0 · 224 px" in cards[1].text and ": same, 9.7× faster" in cards[1].text
        _no_exceptions(page, "compare")
        browser.screenshot(page, tmp_path / "compare.png")

        # Pick two runs on Runs and follow the link to see them side by side.
        browser.open_page(page, url, "runs")
        choose = page.get_by_test_id("stMultiSelect").filter(has_text="Runs to compare")
        for run_id in (first, second):
            choose.click()
            page.get_by_role("option").filter(has_text=run_id).click()
            browser.settle(page)
        page.keyboard.press("Escape")
        page.get_by_role("heading", name="Compare runs").click()  # the menu lets go of the focus
        browser.settle(page)
        page.get_by_role("button", name="Compare 2 runs").click()
        page.wait_for_function("location.pathname.endsWith('/run_comparison')")  # the page switches in place
        browser.settle(page)
        assert "/run_comparison" in page.url and first in page.url and second in page.url
        page.get_by_text("1 that differ").wait_for()  # lr; the rest is folded away
        assert page.locator(".js-plotly-plot").count() == 3  # loss, validation and train accuracy, overlaid
        _no_exceptions(page, "run comparison")
        browser.screenshot(page, tmp_path / "run-comparison.png")

        # Archive a run from its detail: gone from the table, back with "Show archived runs", restorable.
        browser.open_page(page, url, "runs", f"?run={first}")
        _housekeeping(page, "Archive", "Restore")  # the detail says so at once
        assert Store(path).get_run(first)["archived_at"] is not None
        browser.open_page(page, url, "runs")
        page.get_by_text(f"{Store(path).count_runs()} of {Store(path).count_runs()} runs").wait_for()
        assert page.get_by_text(first).count() == 0
        page.get_by_text("Show archived runs").click()
        browser.settle(page)
        assert "archived=true" in page.url
        page.get_by_text("1 of").wait_for()
        _no_exceptions(page, "archived runs")
        browser.open_page(page, url, "runs", f"?archived=true&run={first}")
        _housekeeping(page, "Restore", "Archive")
        assert Store(path).get_run(first)["archived_at"] is None
