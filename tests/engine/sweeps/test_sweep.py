"""Sweeps on a local Ray (2 CPUs): every cell stored once, failures isolated, resumable, crash-safe."""

import threading
import time

import psutil
import pytest

from toptune.jobs import Cancelled
from toptune.progress import Progress
from toptune.store import Store
from toptune.sweeps.driver import connect, sweep
from toptune.sweeps.spec import SweepSpec

ray = pytest.importorskip("ray")
TINY = {"max_train": 40, "max_test": 20}


@pytest.fixture(scope="module")
def local_ray():
    connect(num_cpus=2)
    yield
    ray.shutdown()


def _statuses(store, sweep_id):
    return store.query(f"select cell_key, status, count(*) from runs where sweep_id = '{sweep_id}' "
                       "group by all order by all").rows


@pytest.mark.slow
def test_grid_stored_once_bad_cells_fail_alone_and_rerun_resumes(local_ray, tmp_path):
    spec = SweepSpec.from_dict({
        "datasets": ["digits"], "backbones": ["efficientnet_lite0"], "classifiers": ["ridge", "logistic", "kernel"],
        "seeds": 2, "params": {**TINY, "classifier.M": -5}})  # M only reaches the kernel cells, and is invalid
    store = Store(tmp_path / "s.duckdb")
    report = sweep(spec, store, cache_dir=tmp_path / "cache")
    assert (report.total, report.finished, report.failed) == (6, 4, 2)
    rows = store.runs(sweep_id=spec.sweep_id)
    assert len(rows) == 6 and len({r["cell_key"] for r in rows}) == 6
    failed = [r for r in rows if r["status"] == "failed"]
    assert {r["classifier"] for r in failed} == {"kernel"} and all("'M': -5" in r["error"] for r in failed)
    finished = [r for r in rows if r["status"] == "finished"]
    assert all(0 <= r["accuracy"] <= 1 and r["n_test"] == 20 for r in finished)
    # One extraction reached every top-tuning cell: each run reports the time of that one extraction, so
    # cells that had extracted on their own would show different times.
    assert all(r["cache_hit"] for r in finished)
    assert len({r["extract_time_s"] for r in finished}) == 1 and finished[0]["extract_time_s"] > 0

    store.archive([finished[0]["id"]])  # hidden, not undone: the cell is not asked for again
    again = sweep(spec, store, cache_dir=tmp_path / "cache")
    assert again.finished == 0 and again.skipped == 4  # only the failed cells are tried again
    finished_again = store.runs(sweep_id=spec.sweep_id, status="finished", archived=None)
    assert sorted(r["id"] for r in finished_again) == sorted(r["id"] for r in finished)
    # A finished cell is never run twice; each failed cell has one row per attempt, nothing else.
    counts = {(key, status): n for key, status, n in _statuses(store, spec.sweep_id)}
    assert sorted(counts.values()) == [1, 1, 1, 1, 2, 2]
    assert {status for _, status in counts} == {"finished", "failed"}


@pytest.mark.slow
def test_a_cell_failing_inside_its_worker_fails_alone(local_ray, tmp_path):
    # 'layer:nope' is a well-formed feature mode, so it passes validation on the driver; the extraction
    # task finds no such layer on the worker, and only the cells that need those features fail.
    spec = SweepSpec.from_dict({
        "datasets": ["digits"], "backbones": ["efficientnet_lite0"], "classifiers": ["ridge"], "seeds": 1,
        "params": {**TINY, "feature_mode": ["pooled", "layer:nope"]}})
    store = Store(tmp_path / "s.duckdb")
    report = sweep(spec, store, cache_dir=tmp_path / "cache")
    assert (report.total, report.finished, report.failed) == (2, 1, 1)
    rows = {r["params"]["run"]["feature_mode"]: r for r in store.runs(sweep_id=spec.sweep_id)}
    assert rows["pooled"]["status"] == "finished" and rows["pooled"]["accuracy"] > 0.3
    assert rows["layer:nope"]["status"] == "failed" and "nope" in rows["layer:nope"]["error"]


def _running_cell_workers():
    # Ray titles a worker after the task it runs ('ray::_run_task'), and 'ray::IDLE' between tasks
    for proc in psutil.process_iter(["cmdline"]):
        if "ray::_run_task" in " ".join(proc.info["cmdline"] or []):
            yield proc


def _kill_one_running_cell(killed: list, stop: threading.Event):
    # A warm worker runs one of these cells (4 epochs) in about 3 s: poll often, and kill a worker once it
    # has been running a cell for a moment (so the kill lands in training, not in a task that is ending).
    while not stop.is_set() and not killed:
        for proc in _running_cell_workers():
            time.sleep(0.3)
            try:
                if "ray::_run_task" in " ".join(proc.cmdline()):
                    proc.kill()
                    killed.append(proc.pid)
                    return
            except psutil.NoSuchProcess:
                pass
        time.sleep(0.02)


@pytest.mark.slow
def test_a_killed_worker_loses_no_finished_cell(local_ray, tmp_path):
    spec = SweepSpec.from_dict({
        "datasets": ["digits"], "backbones": ["efficientnet_lite0"], "methods": ["fine-tune"], "seeds": 3,
        "params": {**TINY, "image_size": 32, "epochs": 4, "batch_size": 8}})
    store = Store(tmp_path / "s.duckdb")
    killed, stop = [], threading.Event()
    killer = threading.Thread(target=_kill_one_running_cell, args=(killed, stop), daemon=True)
    killer.start()
    report = sweep(spec, store, cache_dir=tmp_path / "cache", max_concurrent=2)
    stop.set()
    assert killed, "no worker was killed: the test did not exercise a crash"
    # Ray retried the killed cell once, so every cell finished, each recorded exactly once
    assert report.finished == 3 and report.failed == 0
    assert [(s, n) for _, s, n in _statuses(store, spec.sweep_id)] == [("finished", 1)] * 3


class _CancelAfterFirstCell(Progress):
    """What the dashboard's Cancel does to a sweep job: the next progress report raises."""

    def advance(self, n=1):
        raise Cancelled("cancelled from the dashboard")


@pytest.mark.slow
def test_an_interrupted_sweep_keeps_finished_cells_and_marks_the_cells_in_flight(local_ray, tmp_path):
    spec = SweepSpec.from_dict({
        "datasets": ["digits"], "backbones": ["efficientnet_lite0"], "methods": ["fine-tune"], "seeds": 4,
        "params": {**TINY, "image_size": 32, "epochs": 1, "batch_size": 8}})
    store = Store(tmp_path / "s.duckdb")
    with pytest.raises(Cancelled):
        sweep(spec, store, cache_dir=tmp_path / "cache", max_concurrent=2, progress=_CancelAfterFirstCell())
    statuses = sorted(status for _, status, _ in _statuses(store, spec.sweep_id))
    assert statuses == ["finished", "interrupted"]  # two cells never started: no row, nothing lost
    [interrupted] = store.runs(sweep_id=spec.sweep_id, status="interrupted")
    assert interrupted["error"] == "sweep interrupted"
    # Running the spec again resumes: only the cells not finished run, and every cell ends finished.
    report = sweep(spec, store, cache_dir=tmp_path / "cache", max_concurrent=2)
    assert (report.skipped, report.finished, report.failed) == (1, 3, 0)
    assert len(store.runs(sweep_id=spec.sweep_id, status="finished")) == 4
