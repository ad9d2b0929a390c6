"""The Launch page's job cards: time and time left for the whole job, a finished run's accuracy and link, and the
worker processes the server starts reaped as they end (no defunct child)."""

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.dashboard import open_page, texts
from toptune import jobs
from toptune.dashboard.launch import jobs_panel


def _state(pid: int) -> str | None:
    """A process's state letter from /proc ('Z' for a defunct child), None once it is gone (reaped)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return None


def _wait_exited(pid: int, timeout: float = 20.0) -> str | None:
    deadline = time.monotonic() + timeout
    while _state(pid) not in ("Z", None) and time.monotonic() < deadline:
        time.sleep(0.05)
    return _state(pid)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process states from /proc")
def test_a_worker_that_ended_is_reaped_not_left_defunct(tmp_path, monkeypatch):
    path = tmp_path / "runs.duckdb"
    monkeypatch.setenv("TOPTUNE_STORE", str(path))
    started = []

    def start(store_path):  # a worker that finds nothing to do and exits at once, as a real one does
        started.append(subprocess.Popen([sys.executable, "-c", "pass"]))
        return started[-1]

    monkeypatch.setattr(jobs, "ensure_worker", start)
    jobs.submit(path, jobs.RUN, {"method": "top-tune"})
    at = open_page("launch")  # the panel sees a queued job and starts a worker
    (worker,) = started
    assert _wait_exited(worker.pid) == "Z"  # ended, and nobody has waited for it yet
    at.run()  # the panel polls again
    assert _state(worker.pid) is None and jobs_panel.reap() == 0


def test_time_left_is_for_the_whole_job():
    now = 1000.0
    job = {"started": now - 120}
    # A comparison of four runs: one ended, the second half way through its stage.
    progress = {"stage": "fine-tune", "done": 5, "total": 10, "job": {"done": 1, "total": 4}}
    assert jobs_panel.job_steps(progress) == (1.5, 4)
    assert jobs_panel.timing(job, progress, now) == "running 2 min 00 s · about 3 min 20 s left"
    # A single run knows only its stage; before any step there is no estimate.
    assert jobs_panel.timing(job, {"stage": "extract", "done": 0, "total": 8}, now) == "running 2 min 00 s"
    assert jobs_panel.timing({"started": now - 7200}, {"done": 1, "total": 4}, now) == \
        "running 2 h 00 min · about 6 h 00 min left"
    assert jobs_panel.timing({}, {}, now) == ""


def _write(file: Path, record: dict) -> None:
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(json.dumps(record))


def _write_job(path, **job) -> dict:
    record = {"id": job.pop("id"), "kind": jobs.RUN, "payload": {"method": "top-tune", "backbone": "b",
              "dataset": "digits", "classifier": "ridge", "seed": 0}, "created": time.time() - 60,
              "run_ids": [], "error": None, **job}
    _write(jobs.jobs_dir(path) / f"{record['id']}.json", record)
    return record


def test_cards_show_a_finished_runs_accuracy_and_link_and_a_running_jobs_time_left(tmp_path, monkeypatch):
    path = tmp_path / "runs.duckdb"
    monkeypatch.setenv("TOPTUNE_STORE", str(path))
    monkeypatch.setattr(jobs, "worker_alive", lambda p: True)  # nothing is started for the queued one
    now = time.time()
    _write_job(path, id="a-finished", state="finished", run_ids=["r1"], accuracy=0.9361, started=now - 50,
               ended=now - 10)
    _write_job(path, id="c-compared", state="finished", run_ids=["r2", "r3"], started=now - 50, ended=now - 5,
               answer="digits · efficientnet_lite0 · 128 px: top-tune (ridge) 0.950 vs fine-tune 0.900 (3 epochs, 1 "
                      "seed, cpu preset): top-tuning better by 5.0 points, 10.0× faster")
    _write_job(path, id="b-running", state="running", started=now - 65)
    _write(jobs.jobs_dir(path) / "b-running.progress.json",
           {"stage": "fine-tune", "done": 1, "total": 3, "job": {"done": 0, "total": 2}, "message": ""})
    at = open_page("launch")
    links = [(e.proto.label, e.proto.query_string) for e in at.get("page_link")]
    assert ("accuracy 0.9361 · open run r1", "run=r1") in links
    assert ("r2", "run=r2") in links and ("r3", "run=r3") in links  # a comparison's runs, each linked
    assert "top-tuning better by 5.0 points, 10.0× faster" in texts(at)  # and its verdict card
    shown = texts(at)
    assert "finished after 40 s" in shown
    assert re.search(r"running 1 min 0\d s · about \d+ min \d\d s left", shown)  # the page takes a moment
    assert "run 1 of 2" in str(at.get("progress")[0].proto)
