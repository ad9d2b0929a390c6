"""Runs: every run with filters, sort, search, seed aggregates, export and a detail view."""

import streamlit as st

from toptune.dashboard import data
from toptune.dashboard.widgets import filters, run_detail
from toptune.dashboard.widgets.ui import badge_column, nothing_yet, safely

LIVE_REFRESH_S = 2.0
# Each a column the store can sort by (``toptune.store.queries.SORTABLE``); datasets by their label, as shown.
SORTABLE = ["created_at", "accuracy", "purity", "train_time_s", "dataset_label", "backbone", "classifier", "method",
            "status", "seed", "peak_memory_mb"]
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

PAGE_SIZES = (50, 100, 500)

path = data.store_path()
st.title("Runs")
if not safely(data.counts, path, data.run_filter(archived=None))["all"]:  # archived ones count: they can be shown
    nothing_yet(path, "No runs in this store yet: start one from **Launch**.")

chosen = filters.choose(safely(data.filter_options, path, data.FILTER_COLUMNS))
tags = filters.tags(safely(data.tag_options, path))
text = filters.search()
archived = st.sidebar.toggle("Show archived runs", key="archived", bind="query-params",
                             help="archived runs are hidden everywhere until restored; this shows only them")
flt = data.run_filter(chosen, text, tags=tags, archived=archived)
everything = safely(data.counts, path, data.run_filter(archived=archived))  # "N of M runs": M archived or not
left, middle, right = st.columns([3, 1, 1], vertical_alignment="bottom")
sort = filters.pick("Sort by", SORTABLE, "sort", left)
descending = middle.toggle("Descending", value=True, key="desc", bind="query-params")
size = right.selectbox("Rows per page", PAGE_SIZES, index=1, key="size")


def table() -> tuple:
    """The filtered runs' count by status, then one page of them; sorting and paging run in the store."""
    counts = safely(data.counts, path, flt)
    pages = max(1, -(-counts["all"] // size))
    number = st.number_input(f"Page (of {pages})", min_value=1, max_value=pages, value=1, step=1, key="page_number")
    shown = safely(data.page, path, flt, sort, descending, size, int(number))
    st.markdown(f"**{counts['all']}** of {everything['all']} runs · rows {(number - 1) * size + 1}–"
                f"{(number - 1) * size + len(shown)}  " + " ".join(
                    f":{data.STATUS_COLOURS[s]}-badge[{s} {counts[s]}]" for s in data.STATUS_COLOURS if s in counts))
    st.dataframe(shown[data.table_columns(shown)], hide_index=True, column_config=COLUMN_CONFIG, key="runs_table")
    return shown, counts


# While runs are in progress the table refreshes itself, reading again only when the store changed; the page
# reloads fully once they end.
live = everything.get("running", 0) > 0


@st.fragment(run_every=LIVE_REFRESH_S if live else None)
def live_table():
    shown, counts = table()
    if live and not safely(data.counts, path).get("running"):
        st.rerun()
    return shown, counts


view, matched = live_table()
csv, parquet = st.columns(2)
# The files are made only when a button is pressed: all the filtered runs, every column.
csv.download_button(f"Export {matched['all']} runs as CSV", lambda: data.to_csv(data.export(path, flt)),
                    "toptune-runs.csv", "text/csv", key="export_csv", icon=":material/download:", on_click="ignore")
parquet.download_button(f"Export {matched['all']} runs as Parquet", lambda: data.to_parquet(data.export(path, flt)),
                        "toptune-runs.parquet", "application/vnd.apache.parquet", key="export_parquet",
                        icon=":material/download:", on_click="ignore")

st.subheader("Compare runs")
compare_labels = data.run_labels(view)
picked = st.multiselect(f"Runs to compare side by side ({data.MIN_RUNS}–{data.MAX_RUNS}, of this page)",
                        list(compare_labels), format_func=compare_labels.get, key="compare",
                        max_selections=data.MAX_RUNS, placeholder="choose runs")
# A button, not a link: its click carries the choice just made with it (a link could race the choice's rerun).
if st.button(f"Compare {len(picked)} runs: parameters, metrics, epoch curves", key="compare_runs",
             icon=":material/difference:", disabled=len(picked) < data.MIN_RUNS):
    st.switch_page("views/run_comparison.py", query_params={"runs": picked})

st.subheader("Mean ± std over seeds")
st.caption("Finished runs (of the filtered ones) that differ only by seed; `config` names their shared parameters. "
           "Clustering runs (scored by purity, no accuracy) are summarised by study on **Clustering**.")
summary_filter = data.run_filter(chosen, text, finished=True, tags=tags, archived=archived)
st.dataframe(safely(data.seed_summary, path, summary_filter), hide_index=True, key="seed_table", column_config={
    "accuracy_mean": st.column_config.NumberColumn(format="%.4f"),
    "accuracy_std": st.column_config.NumberColumn(format="%.4f"),
    "train_time_s_mean": st.column_config.NumberColumn(format="%.2f"),
    "train_time_s_std": st.column_config.NumberColumn(format="%.2f")})

st.subheader("Run detail")
labels = data.run_labels(view)
# The URL names the run by id (?run=…) while the menu shows a readable label, so the binding is by hand. A run
# named by the URL is offered even when it is not on this page.
wanted = st.query_params.get("run")
if wanted and wanted not in labels:
    labels = {wanted: wanted, **labels}
run_id = st.selectbox("Run (of this page)", list(labels), format_func=labels.get, key="run_choice",
                      placeholder="choose a run", index=list(labels).index(wanted) if wanted in labels else None)
if run_id:
    st.query_params["run"] = run_id
    run_detail.show(path, run_id)
else:
    st.query_params.pop("run", None)
