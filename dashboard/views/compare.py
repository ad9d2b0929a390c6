"""Compare: fine-tuning vs top-tuning. A verdict card per dataset and setup (the one-line answer, with the settings
it holds for), then accuracy against training time, per dataset and by ablation, never mixing image sizes."""

import streamlit as st

from toptune.dashboard import charts, data
from toptune.dashboard.widgets import filters
from toptune.dashboard.widgets.ui import literal, nothing_yet, safely
from toptune.studies.compare import VERDICTS

FILTERS = ("dataset_label", "backbone", "classifier", "pretrain_source")
ABLATIONS = {"classifier": "classifier", "backbone": "backbone", "pretrain_source": "pretrain source"}
VERDICT_COLOURS = {"same": "gray", "fine-tuning better": "red", "top-tuning better": "blue"}
SETTING_KEYS = {"image_size": "size", "epochs": "epochs", "preset": "preset", "seeds": "seeds"}  # URL parameters

POINTS = 5000  # the accuracy-against-time chart samples past this many runs (every Pareto front whole)
TABLE_ROWS = 1000  # comparisons listed at most
CARDS = 24  # verdict cards shown at most (the newest setups of each dataset first)

path = data.store_path()
st.title("Fine-tune or top-tune?")
finished_only = data.run_filter(finished=True)
if not safely(data.counts, path, finished_only)["all"]:
    nothing_yet(path, "No finished runs yet. `toptune compare` (or a comparison from **Launch**) runs both methods "
                      "on the same split and seeds.")

chosen = filters.choose(safely(data.filter_options, path, FILTERS, finished_only))
# A fine-tuning run has no classifier, yet belongs beside the top-tuning runs chosen by classifier.
compared = data.run_filter(chosen, keep_missing=("classifier",))
options = safely(data.comparison_view, path, compared, ()).options  # every setting's values, before choosing
st.sidebar.subheader("Settings")
settings = {name: st.sidebar.multiselect(label, options[name], key=SETTING_KEYS[name], bind="query-params",
                                         placeholder="any")
            for name, label in data.SETTINGS.items()}
st.sidebar.caption("Filters apply to every chart; the URL keeps them, so a view can be shared. A verdict holds for "
                   "its settings: compare like with like.")
view = safely(data.comparison_view, path, compared, tuple((k, tuple(v)) for k, v in settings.items() if v))
kept, picked = view.kept, view.frame
shown = data.sized(data.run_filter(chosen, keep_missing=("classifier",), finished=True), settings["image_size"])


def cards() -> None:
    """One card per dataset and setup: the newest comparison's verdict with its settings, and its runs."""
    found = view.cards
    for card in found[:CARDS]:
        with st.container(border=True):
            text, link = st.columns([6, 1], vertical_alignment="center")
            text.markdown(f":{VERDICT_COLOURS.get(card.verdict, 'gray')}-badge[{card.verdict}] {literal(card.text)}")
            newest = f"the newest of {card.comparisons} comparisons" if card.comparisons > 1 else "one comparison"
            text.caption(f"{newest} of this setup · comparison `{card.comparison_id}` · "
                         f"{card.created_at:%Y-%m-%d %H:%M} UTC")
            link.page_link("views/run_comparison.py", label="its runs", icon=":material/difference:",
                           query_params={"runs": list(card.run_ids[:data.MAX_RUNS])})
    if len(found) > CARDS:
        st.caption(f"{CARDS} of {len(found)} setups; filter by dataset or settings to see the others.")


def verdicts() -> None:
    if not kept:
        st.info("No complete comparison matches: a comparison needs finished runs of both methods "
                "(`toptune compare`, or a comparison from **Launch**).")
        return
    cards()
    overall = view.summary[-1]
    cols = st.columns(5)
    cols[0].metric("comparisons", overall.n)
    for col, verdict in zip(cols[1:4], VERDICTS):
        col.metric(verdict, overall.counts[verdict])
    cols[4].metric("speed-up of top-tuning", f"{overall.speedup_median:.1f}×",
                   help="median; the range is below", delta=None)
    st.caption(f"Speed-up range {overall.speedup_min:.1f}× – {overall.speedup_max:.1f}× (median "
               f"{overall.speedup_median:.1f}×). Verdict **same** when |Δaccuracy| ≤ 1 point.")


def tradeoff() -> None:
    """Accuracy against time, one chart per image size: runs that saw different inputs do not share a front."""
    runs, total = safely(data.points, path, shown, POINTS)
    sizes = data.image_size_groups(runs)
    if len(sizes) <= 1:
        st.plotly_chart(charts.tradeoff_scatter(runs, total), key="tradeoff")
        return
    st.caption("Runs at different image sizes are not comparable: one chart per size.")
    for number, (tab, (_, group)) in enumerate(zip(st.tabs([label for label, _ in sizes]), sizes)):
        with tab:
            st.plotly_chart(charts.tradeoff_scatter(group, total if len(group) == len(runs) else None),
                            key=f"tradeoff_{number}")


verdicts()
st.subheader("Accuracy vs training time")
st.caption("Each point is a finished run. The step lines are each dataset's Pareto front: the best accuracy "
           "reached within a training-time budget (no run is both faster and more accurate than its corners). "
           "Training time includes feature extraction for top-tuning.")
tradeoff()

if kept:
    left, right = st.columns(2)
    with left:
        st.subheader("Δaccuracy per dataset")
        st.plotly_chart(charts.delta_bars(picked), key="delta")
    with right:
        st.subheader("Speed-up per dataset")
        st.plotly_chart(charts.speedup_bars(picked), key="speedup")

st.subheader("Ablations")
if len(view.kept_options["image_size"]) > 1:
    st.caption("These runs span several image sizes: choose one under **Settings** to compare like with like.")
by = filters.pick("Group by", list(ABLATIONS), "by", format_func=ABLATIONS.get)
left, right = st.columns(2)
with left:
    st.plotly_chart(charts.ablation_bars(safely(data.ablation, path, by, "accuracy", shown), by, "accuracy"),
                    key="ablation_accuracy")
with right:
    st.plotly_chart(charts.ablation_bars(safely(data.ablation, path, by, "train_time_s", shown), by, "train_time_s",
                                         log=True), key="ablation_time")

if kept:
    st.subheader("Comparisons")
    if len(picked) > TABLE_ROWS:
        st.caption(f"The newest {TABLE_ROWS:,} of {len(picked):,} comparisons; `toptune report` and the SQL page "
                   "reach every one.")
    formats = {c: st.column_config.NumberColumn(format="%.4f")
               for c in ("top_accuracy", "top_std", "fine_accuracy", "fine_std")}
    formats |= {c: st.column_config.NumberColumn(format="%.2f")
                for c in ("top_time_s", "fine_time_s", "delta_points", "delta_std_points", "speedup")}
    st.dataframe(picked.drop(columns=["setup"]).tail(TABLE_ROWS), hide_index=True, key="comparisons_table",
                 column_config=formats)
    by_backbone = [a for a in view.summary if a.group != "all"]
    st.dataframe([{"backbone": a.group, "comparisons": a.n, **a.counts, "speed-up min": a.speedup_min,
                   "median": a.speedup_median, "max": a.speedup_max} for a in by_backbone],
                 hide_index=True, key="verdicts_table")
