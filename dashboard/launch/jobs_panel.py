"""The queue of background jobs with live progress, polled from the jobs' small files (never the store)."""

from __future__ import annotations

import time
from datetime import datetime

import streamlit as st

from toptune import jobs
from toptune.studies import STUDIES

POLL_S = 1.0
SHOWN = 10
WORKER_START_S = 10.0
STATE_COLOURS = {"queued": "gray", "running": "blue", "finished": "green", "failed": "red", "cancelled": "orange"}


def describe(job: dict) -> str:
    p = job["payload"]
    if job["kind"] in STUDIES:
        return STUDIES[job["kind"]].describe(p)
    if job["kind"] == jobs.SWEEP:
        axes = [" + ".join(map(str, p[k] if isinstance(p[k], list) else [p[k]]))
                for k in ("datasets", "backbones", "methods", "classifiers") if p.get(k)]
        name = f" {p['name']}" if p.get("name") else ""
        return f"sweep{name} · {' × '.join(axes)} (see **Sweeps**)"
    names = [p.get("method"), p.get("backbone"), p.get("classifier"), p.get("dataset")]
    return " · ".join(str(n) for n in names if n) + f" · seed {p.get('seed', 0)}"


def _progress(job: dict) -> None:
    progress = job.get("progress") or {}
    stage, done, total = progress.get("stage"), progress.get("done") or 0, progress.get("total")
    text = " · ".join(t for t in (stage and (f"{stage} {done}/{total}" if total else stage),
                                  progress.get("message")) if t)
    if total:
        st.progress(min(done / total, 1.0), text=text)
    elif text:
        st.caption(text)


def _job(path, job: dict) -> None:
    with st.container(border=True):
        head, button = st.columns([5, 1], vertical_alignment="center")
        created = datetime.fromtimestamp(job["created"]).strftime("%H:%M:%S")
        head.markdown(f":{STATE_COLOURS.get(job['state'], 'gray')}-badge[{job['state']}] {describe(job)} "
                      f"· queued {created} · job `{job['id']}`")
        if job["state"] in ("queued", "running"):
            button.button("Cancel", key=f"cancel-{job['id']}", on_click=jobs.cancel, args=(path, job["id"]),
                          icon=":material/cancel:")
        if job["state"] == "running":
            _progress(job)
        if job.get("run_ids"):
            st.caption("runs: " + ", ".join(f"`{r}`" for r in job["run_ids"]) + " (see **Runs**)")
        if job["state"] == "failed" and job.get("error"):
            st.error(job["error"])


def _start_worker(path) -> None:
    """Start a worker unless one runs or was just started (a new one needs a moment to take its lock).

    Workers exit once the queue stays empty, so queued jobs, even ones left by an earlier dashboard
    session, get a worker whenever this panel is open.
    """
    recent = time.time() - st.session_state.get("worker_started_at", 0.0) < WORKER_START_S
    if not recent and not jobs.worker_alive(path):
        jobs.ensure_worker(path)
        st.session_state["worker_started_at"] = time.time()


@st.fragment(run_every=POLL_S)
def panel(path) -> None:
    listed = jobs.list_jobs(path)
    if any(j["state"] == "queued" for j in listed):
        _start_worker(path)
    if not listed:
        st.caption("No jobs yet.")
    for job in listed[:SHOWN]:
        _job(path, job)
