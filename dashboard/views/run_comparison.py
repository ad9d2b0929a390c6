"""Run comparison: 2–6 chosen runs side by side, their parameters (what differs first, highlighted; what is the
same folded away), their metrics and their epoch curves overlaid. Runs come from the URL (``?runs=A&runs=B``), as
the Runs page links here, or from the picker."""

import streamlit as st

from toptune.dashboard import charts, data
from toptune.dashboard.widgets.ui import as_text, literal, nothing_yet, safely

RECENT = 200  # runs offered by the picker, newest first (those named by the URL too)
HIGHLIGHT = "background-color: rgba(255, 196, 0, 0.25)"

path = data.store_path()
st.title("Run comparison")
if not safely(data.counts, path)["all"]:
    nothing_yet(path, "No runs in this store yet: start some from **Launch**.")

# The URL names the runs by id (?runs=A&runs=B) while the menu shows readable labels, so the binding is by hand.
wanted = list(dict.fromkeys(r for r in st.query_params.get_all("runs") if r))[:data.MAX_RUNS]
recent = safely(data.page, path, data.run_filter(), "created_at", True, RECENT, 1)
labels = {**{run_id: run_id for run_id in wanted}, **data.run_labels(recent)}
chosen = st.multiselect(f"Runs ({data.MIN_RUNS}–{data.MAX_RUNS})", list(labels), wanted, format_func=labels.get,
                        key="runs", max_selections=data.MAX_RUNS, placeholder="choose runs to compare",
                        help="the newest runs, or pick some on **Runs** and follow its link here")
st.query_params["runs"] = chosen
if len(chosen) < data.MIN_RUNS:
    st.info(f"Choose {data.MIN_RUNS} to {data.MAX_RUNS} runs: here, or on **Runs** (*Compare runs*).")
    st.stop()

runs, missing = safely(data.chosen_runs, path, tuple(chosen))
if missing:
    st.warning("Not in this store: " + ", ".join(literal(m) for m in missing))
if len(runs) < data.MIN_RUNS:
    st.stop()
names = data.short_labels(runs)


def reference_highlight(row):
    """Cells that differ from the first run's value."""
    return [""] + [HIGHLIGHT if value != row.iloc[0] else "" for value in row.iloc[1:]]


st.subheader("Metrics")
st.dataframe(data.metric_table(runs, names), key="compared_metrics")

st.subheader("Parameters")
differ, same = data.parameter_table(runs, names)
differ, same = (t.map(as_text) for t in (differ, same))
if differ.empty:
    st.caption("Every parameter is the same in these runs.")
else:
    st.caption(f"{len(differ)} that differ; highlighted where a run differs from the first.")
    st.dataframe(differ.style.apply(reference_highlight, axis=1), key="compared_params")
with st.expander(f"{len(same)} the same in every run"):
    st.dataframe(same, key="same_params")

st.subheader("Epochs")
curves = safely(data.epochs_of, path, tuple(r["id"] for r in runs))
if curves.empty:
    st.caption("None of these runs recorded epochs (fine-tuning and VAE runs do).")
else:
    curves["run"] = curves["run_id"].map(dict(zip((r["id"] for r in runs), names)))
    columns = [c for c in ("train_loss", "val_accuracy", "train_accuracy") if c in curves and curves[c].notna().any()]
    for number, (column, series) in enumerate(zip(st.columns(len(columns)), columns)):
        column.plotly_chart(charts.epoch_overlay(curves, series), key=f"overlay_{number}")
    without = [n for r, n in zip(runs, names) if r["id"] not in set(curves["run_id"])]
    if without:
        st.caption("No epochs recorded for " + ", ".join(literal(n) for n in without) + ".")
