"""Runs: every run with filters, sort, search, seed aggregates, export and a detail view."""

import streamlit as st

from toptune.dashboard import data
from toptune.dashboard.widgets import filters, run_detail
from toptune.dashboard.widgets.ui import badge_column, nothing_yet, safely

LIVE_REFRESH_S = 2.0
SORTABLE = ["created_at", "accuracy", "purity", "train_time_s", "dataset", "backbone", "classifier", "method", "status",
            "seed", "peak_memory_mb"]
COLUMN_CONFIG = {
    "status_badge": badge_column("status", data.STATUS_COLOURS),
    "created_at": st.column_config.DatetimeColumn("created (UTC)", format="YYYY-MM-DD HH:mm:ss"),
    "accuracy": st.column_config.NumberColumn(format="%.4f"),
    **{c: st.column_config.NumberColumn(format="%.4f") for c in ("purity", "nmi", "ari")},
    **{c: st.column_config.NumberColumn(format="%.2f") for c in
       ("train_time_s", "extract_time_s", "fit_time_s", "predict_time_s")},
    "peak_memory_mb": st.column_config.NumberColumn(format="%.0f"),
    "energy_kwh": st.column_config.NumberColumn(format="%.2e"),
}

path = data.store_path()
st.title("Runs")
runs = safely(data.load_runs, path)
if runs.empty:
    nothing_yet(path, "No runs in this store yet: start one from **Launch**.")

chosen = filters.choose(runs, data.FILTER_COLUMNS)
text = filters.search()
left, right = st.columns([3, 1], vertical_alignment="bottom")
sort = filters.pick("Sort by", SORTABLE, "sort", left)
descending = right.toggle("Descending", value=True, key="desc", bind="query-params")


def table(fresh):
    view = data.sort_runs(data.filter_runs(fresh, chosen, text), sort, descending)
    counts = view["status"].value_counts()
    st.markdown(f"**{len(view)}** of {len(fresh)} runs  " + " ".join(
        f":{data.STATUS_COLOURS[s]}-badge[{s} {counts[s]}]" for s in data.STATUS_COLOURS if s in counts))
    st.dataframe(view[data.table_columns(view)], hide_index=True, column_config=COLUMN_CONFIG,
                 key="runs_table")
    csv, parquet = st.columns(2)
    csv.download_button("Export CSV", data.to_csv(view), "toptune-runs.csv", "text/csv", key="export_csv",
                        icon=":material/download:", on_click="ignore")
    parquet.download_button("Export Parquet", data.to_parquet(view), "toptune-runs.parquet",
                            "application/vnd.apache.parquet", key="export_parquet", icon=":material/download:",
                            on_click="ignore")
    return view


# While runs are in progress the table refreshes itself; the page reloads fully once they end.
live = bool((runs["status"] == "running").any())


@st.fragment(run_every=LIVE_REFRESH_S if live else None)
def live_table():
    fresh = safely(data.load_runs, path) if live else runs
    if live and not (fresh["status"] == "running").any():
        st.rerun()
    return table(fresh)


view = live_table()

st.subheader("Mean ± std over seeds")
st.caption("Finished runs that differ only by seed; `config` names their shared parameters. Clustering runs "
           "(scored by purity, no accuracy) are summarised by study on **Clustering**.")
st.dataframe(data.seed_summary(view), hide_index=True, key="seed_table", column_config={
    "accuracy_mean": st.column_config.NumberColumn(format="%.4f"),
    "accuracy_std": st.column_config.NumberColumn(format="%.4f"),
    "train_time_s_mean": st.column_config.NumberColumn(format="%.2f"),
    "train_time_s_std": st.column_config.NumberColumn(format="%.2f")})

st.subheader("Run detail")
labels = data.run_labels(view)
# The URL names the run by id (?run=…) while the menu shows a readable label, so the binding is by hand.
wanted = st.query_params.get("run")
run_id = st.selectbox("Run", list(labels), format_func=labels.get, key="run_choice", placeholder="choose a run",
                      index=list(labels).index(wanted) if wanted in labels else None)
if run_id:
    st.query_params["run"] = run_id
    run_detail.show(path, run_id)
else:
    st.query_params.pop("run", None)
