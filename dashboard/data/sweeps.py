"""A sweep's cells for the Sweeps page: which cells the grid has, where each sits and how it stands.

Where the grid comes from. A sweep queued as a job (from the Launch page) carries its whole spec in the
job's payload, so every cell is known before any runs: a cell not yet in the store is ``queued`` while
the job is queued or running, and ``not run`` once the job ended without it (cancelled, or stopped by a
missing dataset). A sweep started with ``toptune sweep`` leaves no spec behind, only its runs, each
holding its cell's spec (``runs.spec``): its grid is the cells started so far, and grows as they start.
Functions here are pure (lists of runs and jobs in, frames out), so tests need no browser.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache

import pandas as pd

from toptune import jobs
from toptune.errors import ToptuneError
from toptune.sweeps.spec import SweepSpec

from .runs import open_store

QUEUED, NOT_RUN = "queued", "not run"
# Display order; the first three are ends, the others are waiting for one.
STATUSES = ("finished", "failed", "interrupted", "running", QUEUED, NOT_RUN)
ENDED = ("finished", "failed", "interrupted")
STATUS_COLOURS = {"finished": "green", "failed": "red", "interrupted": "orange", "running": "blue",
                  QUEUED: "gray", NOT_RUN: "gray"}
LIVE_JOB_STATES = ("queued", "running")
ERROR_CHARS = 400
NODE_ID_CHARS = 12  # of a Ray node id's 56 hex digits: enough to tell a cluster's nodes apart


@dataclass
class Sweep:
    sweep_id: str
    name: str = ""
    cells: dict[str, dict] = field(default_factory=dict)  # cell key -> RunSpec dict, in grid order
    whole_grid: bool = False  # the cells come from a spec, not only from recorded runs
    jobs: list[dict] = field(default_factory=list)  # newest first
    created: float = float("inf")  # seconds since the epoch
    n_runs: int = 0
    recorded_cells: int = 0  # cells with a run in the store (counted there, for the menu)

    @property
    def job(self) -> dict | None:
        return self.jobs[0] if self.jobs else None

    @property
    def live(self) -> bool:
        """A job of this sweep is waiting or working, so cells will still change."""
        return any(j["state"] in LIVE_JOB_STATES for j in self.jobs)


@lru_cache(maxsize=64)
def _grid(payload_json: str) -> tuple[str, str, tuple]:
    """(sweep id, name, cells) of a job's spec; cached, since the page asks again at every refresh."""
    spec = SweepSpec.from_dict(json.loads(payload_json))
    return spec.sweep_id, spec.name, tuple((c.key, c.spec.to_dict()) for c in spec.cells())


def _from_job(job: dict) -> tuple[str, str, tuple] | None:
    try:
        return _grid(json.dumps(job["payload"], sort_keys=True, default=str))
    except (ToptuneError, TypeError, ValueError):
        return None  # a payload no spec can be made of: the jobs panel shows why it failed


def _epoch(created_at) -> float:
    return created_at.replace(tzinfo=UTC).timestamp() if created_at is not None else float("inf")


def catalogue(runs: list[dict], jobs: list[dict]) -> list[Sweep]:
    """Every sweep seen in the job queue or the store, newest first."""
    found: dict[str, Sweep] = {}
    for job in jobs:
        grid = _from_job(job)
        if grid is None:
            continue
        sweep_id, name, cells = grid
        sweep = found.setdefault(sweep_id, Sweep(sweep_id, name, dict(cells), whole_grid=True))
        sweep.jobs.append(job)
        sweep.created = min(sweep.created, job["created"])
    for run in sorted(runs, key=lambda r: _epoch(r["created_at"])):
        sweep = found.setdefault(run["sweep_id"], Sweep(run["sweep_id"]))
        sweep.cells.setdefault(run["cell_key"], run.get("spec") or {})
        sweep.created = min(sweep.created, _epoch(run["created_at"]))
        sweep.n_runs += 1
    for sweep in found.values():
        sweep.jobs.sort(key=lambda j: j["created"], reverse=True)
    return sorted(found.values(), key=lambda s: s.created, reverse=True)


def label(sweep: Sweep) -> str:
    """A one-line name for the sweep menu."""
    when = datetime.fromtimestamp(sweep.created).strftime("%Y-%m-%d %H:%M") if sweep.created < float("inf") else ""
    # No job state here: the menu is drawn once per page load, so a state would go stale while the grid refreshes.
    cells = max(len(sweep.cells), sweep.recorded_cells)
    return " · ".join(p for p in (sweep.sweep_id, sweep.name, f"{cells} cells", when) if p)


def _outcome(runs: list[dict]) -> dict:
    """The run that stands for a cell: a finished one (a re-run skips it), else the newest attempt."""
    return max(runs, key=lambda r: (r["status"] == "finished", _epoch(r["created_at"])))


def _axes(specs) -> list[str]:
    """Parameters whose value differs between cells: the grid's own axes besides names and seeds."""
    seen: dict[str, set] = {}
    for spec in specs:
        for key, value in (spec.get("params") or {}).items():
            seen.setdefault(key, set()).add(json.dumps(value, sort_keys=True, default=str))
    return sorted(k for k, values in seen.items() if len(values) > 1)


def _row(spec: dict) -> str:
    return " · ".join(str(spec.get(k) or "?") for k in ("dataset", "backbone", "method"))


def _column(spec: dict, axes: list[str]) -> str:
    params = spec.get("params") or {}
    given = [f"{k}={params[k]}" for k in axes if k in params]
    return " · ".join([spec.get("classifier") or "—", *given, f"seed {spec.get('seed', '?')}"])


def _score(run: dict | None) -> tuple[float | None, str]:
    """Accuracy, or purity for a clustering cell, which has none."""
    if run is None or run["status"] != "finished":
        return None, ""
    if run.get("accuracy") is not None:
        return float(run["accuracy"]), "accuracy"
    purity = (run.get("metrics") or {}).get("purity")
    return (float(purity), "purity") if purity is not None else (None, "")


def _node(run: dict) -> str:
    """Where a cell ran: the Ray node's host and the start of its id (nodes of one machine share the host)."""
    host, node_id = run.get("node_host"), run.get("node_id")
    return " · ".join(p for p in (host, node_id and f"id {node_id[:NODE_ID_CHARS]}") if p)


def _hover(key: str, spec: dict, run: dict | None, status: str, score: tuple) -> str:
    """A cell's tooltip: its spec, status, result or error; HTML-escaped, since Plotly renders markup."""
    params = ", ".join(f"{k}={v}" for k, v in sorted((spec.get("params") or {}).items())) or "defaults"
    lines = [f"cell {key}", f"{_row(spec)} · {spec.get('classifier') or 'no classifier'} · seed {spec.get('seed')}",
             f"params: {params}", f"status: {status}" + (f" · run {run['id']}" if run else "")]
    if score[0] is not None:
        lines.append(f"{score[1]}: {score[0]:.4f}")
    if run and (run.get("node_host") or run.get("node_id")):
        lines.append(f"node: {_node(run)}")
    if run and run.get("error"):
        error = run["error"]
        lines.append("error: " + (error[:ERROR_CHARS] + "…" if len(error) > ERROR_CHARS else error))
    return "<br>".join(line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") for line in lines)


def cell_frame(sweep: Sweep, runs: list[dict]) -> pd.DataFrame:
    """One row per cell, in grid order: where it sits (row, column), its status, score, run and tooltip."""
    by_cell: dict[str, list[dict]] = {}
    for run in runs:
        by_cell.setdefault(run["cell_key"], []).append(run)
    axes = _axes(sweep.cells.values())
    rows = []
    for key, spec in sweep.cells.items():
        run = _outcome(by_cell[key]) if key in by_cell else None
        status = run["status"] if run else (QUEUED if sweep.live else NOT_RUN)
        score = _score(run)
        rows.append({"cell_key": key, "row": _row(spec), "column": _column(spec, axes), "status": status,
                     "score": score[0], "score_name": score[1], "run_id": run and run["id"],
                     "error": run and run.get("error"), "hover": _hover(key, spec, run, status, score)})
    return pd.DataFrame(rows, columns=["cell_key", "row", "column", "status", "score", "score_name", "run_id",
                                       "error", "hover"])


def counts(cells: pd.DataFrame) -> dict[str, int]:
    """Cells per status (every status, zeros included), plus 'total' and 'done' (cells that ended)."""
    by_status = cells["status"].value_counts()
    out = {s: int(by_status.get(s, 0)) for s in STATUSES}
    out.update(total=len(cells), done=sum(out[s] for s in ENDED))
    return out


def recorded_sweeps(path, limit: int = 200) -> list[Sweep]:
    """The newest sweeps that recorded runs, counted in the store (no run read): id, cells, first run's time."""
    store = open_store(path)
    if store is None:
        return []
    with store.reading() as con:
        rows = con.execute(f"""SELECT sweep_id, count(DISTINCT cell_key), count(*), min(created_at) FROM runs
                               WHERE sweep_id IS NOT NULL GROUP BY 1 ORDER BY 4 DESC LIMIT {int(limit)}""").fetchall()
    return [Sweep(sweep_id, recorded_cells=cells, n_runs=n, created=_epoch(created))
            for sweep_id, cells, n, created in rows]


def menu(path) -> list[Sweep]:
    """Every sweep to choose from, newest first: the job queue's (whole grids) and the store's."""
    found = {s.sweep_id: s for s in catalogue([], sweep_jobs(path))}
    for sweep in recorded_sweeps(path):
        known = found.setdefault(sweep.sweep_id, sweep)
        known.created, known.recorded_cells = min(known.created, sweep.created), sweep.recorded_cells
    return sorted(found.values(), key=lambda s: s.created, reverse=True)


def sweep_runs(path, sweep_id: str | None = None) -> list[dict]:
    """The runs of one sweep, or of every sweep, decoded, newest first."""
    store = open_store(path)
    if store is None:
        return []
    return store.runs(sweep_id=sweep_id) if sweep_id else store.runs(linked_by="sweep_id")


def sweep_jobs(path) -> list[dict]:
    """Sweep jobs of the background queue, newest first (read from the jobs' files, not the store)."""
    return [j for j in jobs.list_jobs(path) if j["kind"] == "sweep"]
