"""Background jobs: runs and comparisons queued by the dashboard, executed by one worker process.

Live state stays out of DuckDB: each job is a small JSON file in ``<store>.jobs/`` (written atomically),
its progress another, polled cheaply by the dashboard. One worker process at a time drains the queue
(a file lock says whether one is alive); ``ensure_worker`` starts one, detached, when needed. Cancelling
drops a flag file that the job's progress reporter notices at its next step: the run in flight ends
``interrupted`` through the usual recording path, exactly like Ctrl-C on the CLI.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from uuid import uuid4

from .errors import ParamError, ToptuneError
from .progress import Progress

RUN, SWEEP = "run", "sweep"  # the other kinds are the studies' names (``toptune.studies.STUDIES``)
STATES = ("queued", "running", "finished", "failed", "cancelled")


class Cancelled(KeyboardInterrupt):
    """Raised inside a job whose cancel flag was set; runs record it as interrupted."""


def jobs_dir(store_path: str | os.PathLike) -> Path:
    return Path(str(store_path) + ".jobs")


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, default=str)
    os.replace(tmp, path)


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


class FileProgress(Progress):
    """Progress written to a JSON file at most every ``interval`` seconds; honours a cancel flag.

    The file holds the current stage (``stage``, its ``done`` of ``total`` steps, the last ``message``), the
    whole job (``job``: ``done`` of ``total`` runs, e.g. the cells of a comparison or study; one run is 0 of 1
    until it ends) and when the job started (``started_at``, epoch seconds), so a reader can tell the elapsed
    time and estimate what is left of the job, not only of the stage.
    """

    def __init__(self, path: Path, cancel_flag: Path, interval: float = 0.5):
        self.path, self.cancel_flag, self.interval = path, cancel_flag, interval
        now = time.time()
        self.state = {"stage": None, "done": 0, "total": None, "message": "", "updated": now, "started_at": now,
                      "job": {"done": 0, "total": 1}}
        self._last = 0.0

    def _flush(self, force: bool = False) -> None:
        if self.cancel_flag.exists():
            raise Cancelled("cancelled from the dashboard")
        now = time.time()
        if force or now - self._last >= self.interval:
            self.state["updated"] = now
            _write_json(self.path, self.state)
            self._last = now

    def begin(self, stage, total):
        self.state.update(stage=stage, done=0, total=total)
        self._flush(force=True)

    def advance(self, n=1):
        self.state["done"] += n
        self._flush()

    def end(self):
        self._flush(force=True)

    def note(self, text):
        self.state["message"] = text
        self._flush(force=True)

    def postfix(self, text):
        self.state["message"] = text
        self._flush()

    def set_total(self, total):
        self.state["total"] = total
        self._flush()

    def overall(self, done, total):
        self.state["job"] = {"done": int(done), "total": int(total)}
        self._flush(force=True)


def kinds() -> list[str]:
    from .studies import STUDIES

    return [RUN, *STUDIES, SWEEP]


def submit(store_path, kind: str, payload: dict) -> str:
    """Queue a job. ``payload``: a RunSpec dict ('run'), a study's ``plan`` arguments (its name), or a sweep
    spec dict ('sweep')."""
    if kind not in kinds():
        raise ParamError(f"unknown job kind {kind!r} ({', '.join(kinds())})")
    job_id = f"{time.strftime('%Y%m%d%H%M%S')}-{uuid4().hex[:6]}"
    _write_json(jobs_dir(store_path) / f"{job_id}.json",
                {"id": job_id, "kind": kind, "payload": payload, "state": "queued", "created": time.time(),
                 "run_ids": [], "error": None})
    return job_id


def list_jobs(store_path) -> list[dict]:
    """Jobs, newest first, each with its latest progress."""
    folder = jobs_dir(store_path)
    jobs = [j for p in sorted(folder.glob("*.json")) if not p.name.endswith(".progress.json")
            and (j := _read_json(p)) is not None] if folder.exists() else []
    for job in jobs:
        job["progress"] = _read_json(folder / f"{job['id']}.progress.json")
    return sorted(jobs, key=lambda j: j["created"], reverse=True)


def get_job(store_path, job_id: str) -> dict | None:
    return next((j for j in list_jobs(store_path) if j["id"] == job_id), None)


def cancel(store_path, job_id: str) -> None:
    """Cancel a queued job now, or ask a running one to stop at its next progress step."""
    folder = jobs_dir(store_path)
    job = _read_json(folder / f"{job_id}.json")
    if job is None:
        raise ParamError(f"no job {job_id}")
    (folder / f"{job_id}.cancel").touch()
    if job["state"] == "queued":
        _write_json(folder / f"{job_id}.json", {**job, "state": "cancelled"})


def _execute(store_path, job: dict, progress: FileProgress) -> list[str]:
    from .runner import run
    from .spec import RunSpec
    from .store import Store
    from .studies import STUDIES

    store, payload = Store(store_path), job["payload"]
    if job["kind"] == "run":
        run_id, _ = run(RunSpec.from_dict(payload), store, progress=progress)
        return [run_id]
    if job["kind"] == "sweep":
        from .sweeps.driver import preflight, sweep
        from .sweeps.spec import SweepSpec

        spec = SweepSpec.from_dict(payload)
        preflight(spec)
        return sweep(spec, store, progress=progress).run_ids
    return STUDIES[job["kind"]].run_job(payload, store, progress)


def _next_job(store_path) -> dict | None:
    queued = [j for j in list_jobs(store_path) if j["state"] == "queued"]
    return min(queued, key=lambda j: j["created"]) if queued else None


def work(store_path, idle_exit_s: float = 5.0) -> int:
    """Drain the queue, one job at a time; return when it stays empty for ``idle_exit_s``."""
    from filelock import FileLock, Timeout

    folder = jobs_dir(store_path)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        lock = FileLock(str(folder / "worker.lock")).acquire(timeout=0)
    except Timeout:
        return 0  # another worker is draining this queue
    done, idle_since = 0, time.time()
    with lock:
        while time.time() - idle_since < idle_exit_s:
            job = _next_job(store_path)
            if job is None:
                time.sleep(0.2)
                continue
            _run_job(store_path, job)
            done, idle_since = done + 1, time.time()
    return done


def _run_job(store_path, job: dict) -> None:
    folder = jobs_dir(store_path)
    path = folder / f"{job['id']}.json"
    progress = FileProgress(folder / f"{job['id']}.progress.json", folder / f"{job['id']}.cancel")
    _write_json(path, {**job, "state": "running", "started": time.time(), "pid": os.getpid()})
    try:
        run_ids = _execute(store_path, job, progress)
        final = {"state": "finished", "run_ids": run_ids, **outcome(store_path, job["kind"], run_ids)}
    except Cancelled:
        final = {"state": "cancelled", "error": "cancelled"}
    except ToptuneError as exc:
        final = {"state": "failed", "error": str(exc)}
    except Exception as exc:  # the worker outlives any one job
        final = {"state": "failed", "error": f"{type(exc).__name__}: {exc}"}
    _write_json(path, {**_read_json(path), **final, "ended": time.time()})


def outcome(store_path, kind: str, run_ids: list[str]) -> dict:
    """What a finished job's card shows besides its run ids: the accuracy of a single run, and a comparison's
    verdict card (``answer``). Best effort: a job that finished stays finished if this cannot be read."""
    from .store import Store

    store = Store(store_path)
    try:
        if len(run_ids) == 1:
            return {"accuracy": store.get_run(run_ids[0]).get("accuracy")}
        from .studies import compare as cmp

        if kind == cmp.STUDY.name and run_ids:
            found = cmp.STUDY.summary(store, store.get_run(run_ids[0])["comparison_id"])
            return {"answer": cmp.verdict_cards([found])[0].text} if found else {}
    except ToptuneError:
        pass
    return {}


def same_jobs(store_path, kind: str, payload: dict) -> list[dict]:
    """Queued or running jobs of this kind with exactly this payload: a second one would repeat them."""
    key = json.dumps(payload, sort_keys=True, default=str)
    return [j for j in list_jobs(store_path) if j["state"] in ("queued", "running") and j["kind"] == kind
            and json.dumps(j["payload"], sort_keys=True, default=str) == key]


def worker_alive(store_path) -> bool:
    from filelock import FileLock, Timeout

    folder = jobs_dir(store_path)
    if not (folder / "worker.lock").exists():
        return False
    lock = FileLock(str(folder / "worker.lock"))
    try:
        lock.acquire(timeout=0)  # returns a context proxy, not the lock: release through the lock itself
    except Timeout:
        return True
    lock.release()
    return False


def ensure_worker(store_path) -> subprocess.Popen | None:
    """Start a detached worker for this store unless one is running; returns it (None when one ran already).

    The caller owns the process: poll it (``Popen.poll()``) until it ends, so that it is reaped rather than
    left defunct while the caller lives on (the dashboard's jobs panel does).
    """
    if worker_alive(store_path):
        return None
    log = jobs_dir(store_path) / "worker.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as fh:
        return subprocess.Popen([sys.executable, "-m", "toptune.jobs", str(store_path)], stdout=fh, stderr=fh,
                                stdin=subprocess.DEVNULL, start_new_session=True)


if __name__ == "__main__":
    work(sys.argv[1])
