"""The queue of background jobs with live progress, polled from the jobs' small files (never the store).

A running card shows the job's progress, how long it has run and about how long it has left, for the whole
job (every run of a comparison or study), not only the current stage; a finished card shows the run's accuracy
and links to it (``?run=`` on **Runs**). The worker processes this server starts are reaped as they end, so
none lingers as a defunct child.
"""

from __future__ import annotations

import math
import time
from datetime import datetime

import streamlit as st

from toptune import jobs
from toptune.dashboard.widgets.ui import literal
from toptune.studies import STUDIES

POLL_S = 1.0
SHOWN = 10
LINKED_RUNS = 6  # run links on a card at most (a sweep may have hundreds)
WORKER_START_S = 10.0
STATE_COLOURS = {"queued": "gray", "running": "blue", "finished": "green", "failed": "red", "cancelled": "orange"}
RUNS_PAGE = "views/runs.py"

# Worker processes started by this server, polled until they exit: a child that ended is reaped by its parent's
# wait, which Popen.poll() does (the server outlives its workers, and would otherwise keep them defunct).
_workers: list = []


def reap() -> int:
    """Poll the workers this server started; forget (and so reap) those that ended. Returns how many still run."""
    _workers[:] = [w for w in _workers if w.poll() is None]
    return len(_workers)


def describe(job: dict) -> str:
    p = job["payload"]
    if job["kind"] in STUDIES:
        return STUDIES[job["kind"]].describe(p)
    if job["kind"] == jobs.SWEEP:
        axes = [" + ".join(map(str, p[k] if isinstance(p[k], list) else [p[k]]))
                for k in ("datasets", "backbones", "methods", "classifiers") if p.get(k)]
        name = f" {p['name']}" if p.get("name") else ""
        return f"sweep{name} · {' × '.join(axes)} (see Sweeps)"
    names = [p.get("method"), p.get("backbone"), p.get("classifier"), p.get("dataset")]
    return " · ".join(str(n) for n in names if n) + f" · seed {p.get('seed', 0)}"


def duration(seconds: float | None) -> str:
    """A duration for people: "45 s", "3 min 05 s", "2 h 07 min" ("" when unknown)."""
    if seconds is None or not math.isfinite(seconds):
        return ""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def _count(value) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def job_steps(progress: dict) -> tuple[float, float] | None:
    """(done, total) of the whole job: its runs (``job``: the runs of a comparison, study or sweep), with the current
    run's stage counted as a fraction of one; None while nothing says how much there is."""
    stage_done, stage_total = _count(progress.get("done")), _count(progress.get("total"))
    part = min(stage_done / stage_total, 1.0) if stage_done is not None and stage_total else 0.0
    whole = progress.get("job") if isinstance(progress.get("job"), dict) else {}
    done, total = _count(whole.get("done")), _count(whole.get("total"))
    if total:
        return min((done or 0.0) + part, total), total
    return (part, 1.0) if stage_total else None


def timing(job: dict, progress: dict, now: float | None = None) -> str:
    """"running 2 min 10 s · about 4 min 30 s left" for the whole job; the ETA once a step has been made."""
    now = time.time() if now is None else now
    started = _count(progress.get("started_at")) or _count(job.get("started"))
    if started is None:
        return ""
    elapsed = max(now - started, 0.0)
    text = f"running {duration(elapsed)}"
    steps = job_steps(progress)
    if steps and 0 < steps[0] < steps[1]:
        text += f" · about {duration(elapsed * (steps[1] - steps[0]) / steps[0])} left"
    return text


def _progress(job: dict) -> None:
    progress = job.get("progress") or {}
    stage, done, total = progress.get("stage"), progress.get("done") or 0, progress.get("total")
    text = " · ".join(t for t in (stage and (f"{stage} {done}/{total}" if total else stage),
                                  progress.get("message")) if t)
    steps = job_steps(progress)
    whole = progress.get("job") if isinstance(progress.get("job"), dict) else {}
    runs, ended = _count(whole.get("total")), _count(whole.get("done")) or 0.0
    if runs and runs > 1:
        text = f"run {min(int(ended) + 1, int(runs))} of {int(runs)}" + (f" · {text}" if text else "")
    if steps:
        st.progress(min(steps[0] / steps[1], 1.0), text=literal(text) if text else None)
    elif text:
        st.caption(literal(text))
    st.caption(timing(job, progress))


def _outcome(job: dict) -> None:
    """A finished job's accuracy (one run) and links to its runs on **Runs**."""
    run_ids = list(job.get("run_ids") or [])
    if not run_ids:
        return
    if job.get("answer"):  # a comparison's verdict card
        st.markdown(literal(job["answer"]))
    accuracy = job.get("accuracy")
    if len(run_ids) == 1:
        label = f"accuracy {accuracy:.4f} · open run {run_ids[0]}" if isinstance(accuracy, int | float) \
            else f"open run {run_ids[0]}"
        st.page_link(RUNS_PAGE, label=label, icon=":material/open_in_new:", query_params={"run": run_ids[0]})
        return
    st.caption(f"{len(run_ids)} runs" + (f"; the first {LINKED_RUNS}:" if len(run_ids) > LINKED_RUNS else ":"))
    for column, run_id in zip(st.columns(min(len(run_ids), LINKED_RUNS)), run_ids[:LINKED_RUNS]):
        with column:
            st.page_link(RUNS_PAGE, label=run_id, icon=":material/open_in_new:", query_params={"run": run_id})


def _job(path, job: dict) -> None:
    with st.container(border=True):
        head, button = st.columns([5, 1], vertical_alignment="center")
        created = datetime.fromtimestamp(job["created"]).strftime("%H:%M:%S")
        head.markdown(f":{STATE_COLOURS.get(job['state'], 'gray')}-badge[{job['state']}] {literal(describe(job))} "
                      f"· queued {created} · job `{job['id']}`")
        if job["state"] in ("queued", "running"):
            button.button("Cancel", key=f"cancel-{job['id']}", on_click=jobs.cancel, args=(path, job["id"]),
                          icon=":material/cancel:")
        if job["state"] == "running":
            _progress(job)
        elif job["state"] in ("finished", "cancelled", "failed") and job.get("ended") and job.get("started"):
            st.caption(f"{job['state']} after {duration(job['ended'] - job['started'])}")
        _outcome(job)
        if job["state"] == "failed" and job.get("error"):
            st.error(literal(job["error"]))


def _start_worker(path) -> None:
    """Start a worker unless one runs or was just started (a new one needs a moment to take its lock).

    Workers exit once the queue stays empty, so queued jobs, even ones left by an earlier dashboard
    session, get a worker whenever this panel is open.
    """
    recent = time.time() - st.session_state.get("worker_started_at", 0.0) < WORKER_START_S
    if not recent and not jobs.worker_alive(path):
        started = jobs.ensure_worker(path)
        if callable(getattr(started, "poll", None)):
            _workers.append(started)
        st.session_state["worker_started_at"] = time.time()


@st.fragment(run_every=POLL_S)
def panel(path) -> None:
    reap()
    listed = jobs.list_jobs(path)
    if any(j["state"] == "queued" for j in listed):
        _start_worker(path)
    if not listed:
        st.caption("No jobs yet.")
    for job in listed[:SHOWN]:
        _job(path, job)
