"""In headless Chromium: the Clustering page without and with a study, and the Sweeps page following a
sweep while the background worker runs it on local Ray.

The sweep is queued through ``toptune.jobs`` as the Launch page queues one; the page is opened once and
never reloaded, so every change it shows comes from its own refresh. Screenshots go to each test's
temporary folder.
"""

import time

import pytest

from tests.support import browser
from tests.support import dashboard_studies as studies
from toptune import jobs
from toptune.store import Store
from toptune.sweeps.spec import SweepSpec

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not browser.CHROMIUM.exists(),
                       reason="needs Debian's chromium (apt-get install chromium chromium-driver; CI installs it)"),
]
pytest.importorskip("ray")
# Four top-tuning cells sharing one small extraction: about 20 s on two cores, Ray's start included.
SPEC = {"name": "e2e", "datasets": ["digits"], "backbones": ["efficientnet_lite0"],
        "classifiers": ["ridge", "logistic"], "seeds": 2, "params": {"max_train": 40, "max_test": 20, "image_size": 32}}
SWEEP_TIMEOUT_S = 150


def metric(page, label: str) -> int:
    named = page.get_by_test_id("stMetricLabel").get_by_text(label, exact=True)
    card = page.get_by_test_id("stMetric").filter(has=named)
    return int(card.get_by_test_id("stMetricValue").inner_text(timeout=10_000))


def follow(page, total: int, shots) -> list[tuple[int, int]]:
    """(done, running) as the page shows them, polled until every cell is done; one screenshot mid-way."""
    seen, deadline = [], time.monotonic() + SWEEP_TIMEOUT_S
    while not seen or seen[-1][0] < total:
        assert time.monotonic() < deadline, f"the page still shows {seen[-1]} after {SWEEP_TIMEOUT_S} s"
        seen.append((metric(page, "done"), metric(page, "running")))
        if seen[-1][1] and not (shots / "sweeps-running.png").exists():
            browser.screenshot(page, shots / "sweeps-running.png")
        page.wait_for_timeout(500)
    return seen


def wait_for_worker_exit(store, timeout: float = 30) -> None:
    """The worker leaves once the queue stays empty (and takes its Ray with it): nothing outlives the test."""
    deadline = time.monotonic() + timeout
    while jobs.worker_alive(store) and time.monotonic() < deadline:
        time.sleep(0.5)


def test_the_sweeps_page_shows_progress_while_a_sweep_runs(tmp_path):
    store, shots = tmp_path / "sweep.duckdb", tmp_path / "screenshots"
    shots.mkdir()
    spec = SweepSpec.from_dict(SPEC)
    job_id = jobs.submit(store, "sweep", SPEC)
    try:
        with browser.dashboard(store, tmp_path / "server.log") as url, browser.chromium() as page:
            browser.open_page(page, url, "sweeps")
            assert browser.exceptions(page) == []
            page.get_by_text("0 of 4 cells done").wait_for()
            assert (metric(page, "cells"), metric(page, "queued")) == (4, 4)
            browser.screenshot(page, shots / "sweeps-queued.png")

            jobs.ensure_worker(store)
            seen = follow(page, 4, shots)
            page.get_by_text("4 of 4 cells done · 4 finished · 0 failed").wait_for()
            assert browser.exceptions(page) == []
            assert page.locator(".js-plotly-plot").count() == 1
            browser.screenshot(page, shots / "sweeps-done.png")
    finally:
        wait_for_worker_exit(store)
    assert seen[0][0] < 4 and any(running or 0 < done < 4 for done, running in seen), seen  # seen in progress
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)  # done only grows
    assert jobs.get_job(store, job_id)["state"] == "finished"
    runs = Store(store).runs(sweep_id=spec.sweep_id)
    assert len(runs) == 4 and {r["status"] for r in runs} == {"finished"}


def test_the_clustering_page_without_and_with_a_study(tmp_path):
    store, shots = tmp_path / "study.duckdb", tmp_path / "screenshots"
    shots.mkdir()
    with browser.dashboard(store, tmp_path / "server.log") as url, browser.chromium() as page:
        browser.open_page(page, url, "clustering")
        page.get_by_text("No store at").wait_for()
        assert browser.exceptions(page) == []
        browser.screenshot(page, shots / "clustering-empty.png")

        with studies.plugins():  # the page itself needs no plugin: it reads the store and the latent files
            study = studies.fill_studies(store)["full"]
        browser.open_page(page, url, "clustering", f"?study={study.study_id}")
        page.get_by_text("Latent codes in 2-D").wait_for()
        assert page.locator(".js-plotly-plot").count() == 3  # purity vs Z, by cluster, by class
        assert page.get_by_text("feature VAE", exact=True).count() >= 1 and browser.exceptions(page) == []
        page.get_by_text("t-SNE", exact=True).click()
        browser.settle(page)
        page.get_by_text("t-SNE of 150 latent codes, by class").wait_for()
        assert browser.exceptions(page) == []
        browser.screenshot(page, shots / "clustering.png")
