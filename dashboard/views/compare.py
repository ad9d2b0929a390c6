"""Compare: fine-tuning vs top-tuning, as accuracy against training time, per dataset and by ablation."""

import streamlit as st

from toptune.dashboard import charts, data
from toptune.dashboard.widgets import filters
from toptune.dashboard.widgets.ui import nothing_yet, safely
from toptune.studies.compare import VERDICTS

FILTERS = ("dataset", "backbone", "classifier", "pretrain_source")
ABLATIONS = {"classifier": "classifier", "backbone": "backbone", "pretrain_source": "pretrain source"}

path = data.store_path()
st.title("Fine-tune or top-tune?")
runs = safely(data.load_runs, path)
finished = runs[runs["status"] == "finished"] if not runs.empty else runs
if finished.empty:
    nothing_yet(path, "No finished runs yet. `toptune compare` (or a comparison from **Launch**) runs both methods "
                      "on the same split and seeds.")

chosen = filters.choose(finished, FILTERS)
st.sidebar.caption("Filters apply to every chart; the URL keeps them, so a view can be shared.")
shown = data.filter_runs(finished, chosen, keep_missing=("classifier",))
items = safely(data.load_comparisons, path)
table = data.comparisons_frame(items, runs)
picked = data.filter_runs(table, chosen)
kept = [c for c in items if c.comparison_id in set(picked["comparison_id"])]


def verdicts():
    if not kept:
        st.info("No complete comparison matches: a comparison needs finished runs of both methods "
                "(`toptune compare`, or a comparison from **Launch**).")
        return
    overall = data.verdict_summary(kept)[-1]
    cols = st.columns(5)
    cols[0].metric("comparisons", overall.n)
    for col, verdict in zip(cols[1:4], VERDICTS):
        col.metric(verdict, overall.counts[verdict])
    cols[4].metric("speed-up of top-tuning", f"{overall.speedup_median:.1f}×",
                   help="median; the range is below", delta=None)
    st.caption(f"Speed-up range {overall.speedup_min:.1f}× – {overall.speedup_max:.1f}× (median "
               f"{overall.speedup_median:.1f}×). Verdict **same** when |Δaccuracy| ≤ 1 point.")


verdicts()
st.subheader("Accuracy vs training time")
st.caption("Each point is a finished run. The step lines are each dataset's Pareto front: the best accuracy "
           "reached within a training-time budget (no run is both faster and more accurate than its corners). "
           "Training time includes feature extraction for top-tuning.")
st.plotly_chart(charts.tradeoff_scatter(shown), key="tradeoff")

if kept:
    left, right = st.columns(2)
    with left:
        st.subheader("Δaccuracy per dataset")
        st.plotly_chart(charts.delta_bars(picked), key="delta")
    with right:
        st.subheader("Speed-up per dataset")
        st.plotly_chart(charts.speedup_bars(picked), key="speedup")

st.subheader("Ablations")
by = filters.pick("Group by", list(ABLATIONS), "by", format_func=ABLATIONS.get)
left, right = st.columns(2)
with left:
    st.plotly_chart(charts.ablation_bars(shown, by, "accuracy"), key="ablation_accuracy")
with right:
    st.plotly_chart(charts.ablation_bars(shown, by, "train_time_s", log=True), key="ablation_time")

if kept:
    st.subheader("Comparisons")
    st.dataframe(picked.drop(columns=["setup"]), hide_index=True, key="comparisons_table", column_config={
        c: st.column_config.NumberColumn(format="%.4f")
        for c in ("top_accuracy", "top_std", "fine_accuracy", "fine_std")} | {
        c: st.column_config.NumberColumn(format="%.2f")
        for c in ("top_time_s", "fine_time_s", "delta_points", "delta_std_points", "speedup")})
    by_backbone = [a for a in data.verdict_summary(kept) if a.group != "all"]
    st.dataframe([{"backbone": a.group, "comparisons": a.n, **a.counts, "speed-up min": a.speedup_min,
                   "median": a.speedup_median, "max": a.speedup_max} for a in by_backbone],
                 hide_index=True, key="verdicts_table")
