"""Background jobs: queued by one process, run by a detached worker, cancellable, progress on disk."""

import time

import pytest

from toptune import jobs
from toptune.spec import RunSpec
from toptune.store import Store

SMALL = {"max_train": 40, "max_test": 20}


def _wait(store_path, job_id, states=("finished", "failed", "cancelled"), timeout=240):
    deadline = time.time() + timeout
    while time.time() < deadline:
        job = jobs.get_job(store_path, job_id)
        if job["state"] in states:
            return job
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} still {job['state']} after {timeout} s")


@pytest.mark.slow
def test_queued_runs_execute_in_a_detached_worker_one_at_a_time(tmp_path):
    store = tmp_path / "s.duckdb"
    first = jobs.submit(store, "run", RunSpec(classifier="ridge", params=SMALL).to_dict())
    bad = jobs.submit(store, "run", RunSpec(classifier="ridge", params={**SMALL, "M": 3}).to_dict())
    jobs.ensure_worker(store)
    jobs.ensure_worker(store)  # a second call must not start a second worker
    done = _wait(store, first)
    assert done["state"] == "finished" and len(done["run_ids"]) == 1
    assert done["progress"]["stage"] == "fit ridge"  # the last stage it reported
    failed = _wait(store, bad)
    assert failed["state"] == "failed" and "unknown parameter 'M'" in failed["error"]
    (row,) = Store(store).runs()
    assert row["id"] == done["run_ids"][0] and row["status"] == "finished"
    assert done["started"] <= failed["started"]  # queue order


@pytest.mark.slow
def test_cancel_marks_the_running_run_interrupted(tmp_path):
    store = tmp_path / "s.duckdb"
    job_id = jobs.submit(store, "run", RunSpec(method="fine-tune", params={
        "max_train": 200, "max_test": 20, "image_size": 32, "epochs": 50}).to_dict())
    jobs.ensure_worker(store)
    _wait(store, job_id, states=("running",))
    deadline = time.time() + 120
    while not Store(store).runs(status="running") and time.time() < deadline:
        time.sleep(0.2)
    jobs.cancel(store, job_id)
    job = _wait(store, job_id)
    assert job["state"] == "cancelled"
    (row,) = Store(store).runs()
    assert row["status"] == "interrupted"


def test_cancel_a_queued_job_and_unknown_kinds(tmp_path):
    store = tmp_path / "s.duckdb"
    job_id = jobs.submit(store, "compare", {"dataset": "digits", "backbone": "efficientnet_lite0"})
    jobs.cancel(store, job_id)
    assert jobs.get_job(store, job_id)["state"] == "cancelled"
    with pytest.raises(Exception, match="unknown job kind"):
        jobs.submit(store, "teleport", {})
    assert jobs.work(store, idle_exit_s=0.5) == 0  # nothing queued: the worker exits


def test_a_worker_that_has_exited_is_not_alive(tmp_path):
    store = tmp_path / "s.duckdb"
    assert not jobs.worker_alive(store)
    assert jobs.work(store, idle_exit_s=0.1) == 0  # drains an empty queue and exits, leaving its lock file
    assert (jobs.jobs_dir(store) / "worker.lock").exists()
    assert not jobs.worker_alive(store)  # so the next job gets a new worker
    from filelock import FileLock

    with FileLock(str(jobs.jobs_dir(store) / "worker.lock")):
        assert jobs.worker_alive(store)
