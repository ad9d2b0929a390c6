"""Sweeps: one sweep's progress and its grid of cells, coloured by status and score, live while it runs.

The grid of a sweep queued from Launch is known from its job, so cells still to come show as queued; a
sweep run with ``toptune sweep`` shows the cells started so far (see ``toptune.dashboard.sweeps``).
"""

import streamlit as st

from toptune.dashboard import charts, data
from toptune.dashboard.data import sweeps
from toptune.dashboard.widgets.ui import literal, nothing_yet, safely

LIVE_REFRESH_S = 2.0
TABLE_CONFIG = {"score": st.column_config.NumberColumn(format="%.4f"), "hover": None, "score_name": None}

path = data.store_path()
st.title("Sweeps")


def load(sweep_id: str) -> tuple[list[sweeps.Sweep], list[dict]]:
    """One sweep, from the store and the job queue, and its runs (only its own are read)."""
    runs = safely(data.sweep_runs, path, sweep_id)
    found = sweeps.catalogue(runs, data.sweep_jobs(path))
    return [s for s in found if s.sweep_id == sweep_id], runs


def board(sweep: sweeps.Sweep, runs: list[dict]) -> tuple[sweeps.Sweep, object, dict]:
    cells = sweeps.cell_frame(sweep, [r for r in runs if r["sweep_id"] == sweep.sweep_id])
    return sweep, cells, sweeps.counts(cells)


def live(sweep: sweeps.Sweep, counts: dict) -> bool:
    """Cells will still change: a job of the sweep waits or works, or (a CLI sweep) cells are running."""
    return sweep.live or counts["running"] > 0


def headline(sweep: sweeps.Sweep, counts: dict) -> None:
    job = sweep.job
    source = (f"grid from job `{job['id']}` ({job['state']})" if sweep.whole_grid else
              "started with `toptune sweep`: the grid shows the cells started so far")
    st.caption(f"Sweep `{sweep.sweep_id}`" + (f" · **{literal(sweep.name)}**" if sweep.name else "") + f" · {source}")
    done, total = counts["done"], counts["total"]
    st.progress(done / total if total else 0.0,
                text=f"{done} of {total} cells done · {counts['finished']} finished · {counts['failed']} failed")
    shown = ["finished", "failed", "running", sweeps.QUEUED] + [s for s in ("interrupted", sweeps.NOT_RUN) if counts[s]]
    for column, (name, value) in zip(st.columns(2 + len(shown)),
                                     [("cells", total), ("done", done), *((s, counts[s]) for s in shown)]):
        column.metric(name, value)
    if job and job["state"] == "failed" and job.get("error"):
        st.error(f"The sweep's job failed: {literal(job['error'])}")


def grid(cells) -> None:
    st.plotly_chart(charts.sweep_heatmap(cells), key="sweep_grid")
    st.caption("Rows: dataset · backbone · method; columns: classifier (— for fine-tuning) · the grid's varying "
               "parameters · seed. A finished cell shows its score: test accuracy, or purity for a clustering "
               "cell; hover a cell for its spec, run and error.")
    with st.expander("Cells"):
        st.dataframe(cells, hide_index=True, key="sweep_cells", column_config=TABLE_CONFIG)


known = safely(sweeps.menu, path)
if not known:
    nothing_yet(path, "No sweep yet: `toptune sweep SPEC` on the command line, or a sweep from **Launch**.")

labels = {s.sweep_id: sweeps.label(s) for s in known}
# The URL names the sweep by id (?sweep=…) while the menu shows a readable label, so the binding is by hand.
wanted = st.query_params.get("sweep")
sweep_id = st.selectbox("Sweep", list(labels), format_func=labels.get, key="sweep_choice",
                        index=list(labels).index(wanted) if wanted in labels else 0)
st.query_params["sweep"] = sweep_id
chosen, chosen_runs = load(sweep_id)
first = board(chosen[0], chosen_runs)
moving = live(first[0], first[2])


# While the sweep moves, its part of the page refreshes itself; the whole page reloads once it stops.
@st.fragment(run_every=LIVE_REFRESH_S if moving else None)
def progress():
    sweep, cells, counts = first
    if moving:
        current, runs = load(sweep_id)
        if not current:
            st.rerun()
        sweep, cells, counts = board(current[0], runs)
        if not live(sweep, counts):
            st.rerun()
    headline(sweep, counts)
    grid(cells)


progress()
