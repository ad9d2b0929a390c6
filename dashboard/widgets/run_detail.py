"""The detail of one run: its outcome (clustering scores for a clustering run), the files it skipped, parameters,
confusion matrix (classes × clusters for clustering, class names on the axes), per-epoch curves, and, unless the
dashboard is read-only, its housekeeping: name, tags, note, archive or restore, delete (confirmed)."""

from __future__ import annotations

import streamlit as st

from toptune.dashboard import charts, data
from toptune.dashboard.widgets.ui import key_values, literal, read_only, safely

METRICS = [("accuracy", "accuracy", "{:.4f}"), ("train_time_s", "training time", "{:.2f} s"),
           ("extract_time_s", "extraction", "{:.2f} s"), ("fit_time_s", "fit", "{:.2f} s"),
           ("predict_time_s", "prediction", "{:.2f} s"), ("peak_memory_mb", "peak memory", "{:.0f} MB"),
           ("trained_params", "trained parameters", "{:,}"), ("energy_kwh", "energy (estimate)", "{:.2g} kWh")]
# A clustering run scores its clusters against the labels instead of predicting classes.
CLUSTER_METRICS = [("purity", "purity", "{:.4f}"), ("overlaps", "overlaps (classes lost)", "{}"),
                   ("nmi", "NMI", "{:.4f}"), ("ari", "ARI", "{:.4f}"), ("latent", "latent size Z", "{}"),
                   ("latent_bytes_per_image", "latent bytes / image", "{:,}")]
PER_ROW = 4
INFO = ("info", "spec", "metrics", "device", "host", "n_train", "n_test", "n_classes", "feature_dim", "cache_hit",
        "comparison_id", "study_id", "sweep_id", "cell_key", "energy_source", "toptune_version")


def show(path, run_id: str) -> None:
    run = safely(data.run_detail, path, run_id)
    header(run)
    if run.get("error"):
        st.error(literal(run["error"]))
    if run.get("model_bytes"):
        st.page_link("views/predict.py", label=f"Predict with this run's model ({run['model_bytes'] / 2**20:.1f} MB)",
                     icon=":material/image_search:", query_params={"run": run_id})
    _metrics(run)
    _skipped(run)
    clusters = run["method"] == "cluster"
    tabs = st.tabs(["Parameters", "Classes × clusters" if clusters else "Confusion matrix", "Epochs", "Info"])
    with tabs[0]:
        st.dataframe(key_values(run.get("params") or {}), hide_index=True, key="run_params")
    with tabs[1]:
        _confusion(path, run, clusters)
        if not clusters and run["status"] == "finished":
            _misclassified(path, run)
    with tabs[2]:
        _epochs(path, run_id, run["method"])
    with tabs[3]:
        st.dataframe(key_values({k: run.get(k) for k in INFO}), hide_index=True, key="run_info")
    if not read_only():
        manage(path, run)


def header(run: dict) -> None:
    """Status (and archived), name, what ran on which data, tags and note."""
    badges = [f":{data.STATUS_COLOURS.get(run['status'], 'gray')}-badge[{run['status']}]"]
    if run.get("archived_at") is not None:
        badges.append(f":gray-badge[archived {run['archived_at']:%Y-%m-%d}]")
    if run.get("tags"):
        badges.append("· tags " + " ".join(literal(tag) for tag in run["tags"]))
    st.markdown(" ".join(badges))
    if run.get("name"):
        st.markdown(f"#### {literal(run['name'])}")
    names = " · ".join(str(run[k]) for k in ("method", "backbone", "classifier") if run.get(k))
    names += f" · {data.dataset_name(run)}"
    st.markdown(f"**{literal(names)}** · seed {run['seed']} · created {run['created_at']:%Y-%m-%d %H:%M:%S} UTC "
                f"· `{run['id']}`")
    if run.get("note"):
        st.caption(literal(run["note"]))


def _metrics(run: dict) -> None:
    scores = dict(run.get("metrics") or {})
    if scores.get("pipeline") == "kmeans":  # clusters the features themselves: no latent code
        for key in ("latent", "latent_bytes_per_image"):
            scores.pop(key, None)
    figures = [(label, fmt.format(scores[key])) for key, label, fmt in CLUSTER_METRICS if scores.get(key) is not None]
    figures += [(label, fmt.format(run[key])) for key, label, fmt in METRICS if run.get(key) is not None]
    for start in range(0, len(figures), PER_ROW):
        for column, (label, value) in zip(st.columns(PER_ROW), figures[start:start + PER_ROW]):
            column.metric(label, value)


def _skipped(run: dict) -> None:
    """The files the run left out (unreadable, truncated, duplicates, links outside the folder), each with why."""
    rows, counted = data.skipped_files(run.get("info"))
    if not rows and not counted:
        return
    total = max(counted, len(rows))
    with st.expander(f"{total} file(s) skipped", icon=":material/warning:", expanded=False):
        if total > len(rows):
            st.caption(f"The first {len(rows)} of {total} are kept with the run.")
        if rows:
            st.dataframe(rows, hide_index=True, key="skipped_files", column_config={
                "split": st.column_config.TextColumn(width="small"), "file": st.column_config.TextColumn(width="large"),
                "reason": st.column_config.TextColumn(width="large")})


def _confusion(path, run: dict, clusters: bool) -> None:
    names = (run.get("info") or {}).get("classes")
    matrix = safely(data.confusion_matrix, path, run["id"], names, clusters)
    if matrix.empty:
        st.caption("No test predictions recorded for this run.")
        return
    if clusters:
        st.caption("Images per class and cluster (all images: a clustering run has no held-out split).")
        figure = charts.confusion_heatmap(matrix, x_label="cluster", count_label="images")
    else:
        figure = charts.confusion_heatmap(matrix)
    st.plotly_chart(figure, key="confusion")


def _epochs(path, run_id: str, method: str) -> None:
    curves = safely(data.epoch_curves, path, run_id)
    if curves.empty:
        st.caption("Per-epoch curves exist for fine-tuning and VAE runs only." if method != "fine-tune"
                   else "No epoch recorded (yet).")
        return
    figures = charts.epoch_figures(curves)
    for number, (column, figure) in enumerate(zip(st.columns(len(figures)), figures)):
        column.plotly_chart(figure, key=f"epochs_{number}")
    st.dataframe(curves.drop(columns=["run_id"]), hide_index=True)


def _misclassified(path, run: dict) -> None:
    """Thumbnails of test images the run got wrong, read back from its dataset on request (it may be large)."""
    if not st.toggle("Show misclassified test images", key=f"wrong_{run['id']}"):
        return
    wrong = safely(data.misclassified, path, run)
    if not wrong:
        st.caption("Every recorded test prediction is right.")
        return
    for start in range(0, len(wrong), 6):
        for column, item in zip(st.columns(6), wrong[start:start + 6]):
            column.image(item["image"], width=96,
                         caption=f"#{item['sample']}: {item['true']} → {item['predicted']}")


# ---- housekeeping ----------------------------------------------------------------------------------
def manage(path, run: dict) -> None:
    """Name, tags and note (one form), archive or restore, and delete behind a confirmation; every change goes
    through the store's one writer path."""
    run_id = run["id"]
    with st.expander("Name, tags, note, archive, delete", icon=":material/edit:"):
        with st.form(f"manage_{run_id}", enter_to_submit=False, border=False):
            name = st.text_input("Name", run.get("name") or "", key=f"name_{run_id}", placeholder="no name",
                                 help="a label of your own, shown with the run's id")
            known = safely(data.tag_options, path)
            tags = st.multiselect("Tags", sorted({*known, *(run.get("tags") or [])}), run.get("tags") or [],
                                  key=f"tags_{run_id}", accept_new_options=True, placeholder="type a tag, Enter",
                                  help="filter by them on this page; in SQL: list_contains(tags, 'x')")
            note = st.text_area("Note", run.get("note") or "", key=f"note_{run_id}", height=80)
            if st.form_submit_button("Save", icon=":material/save:"):
                safely(data.label_run, path, run, name, tags, note)
                st.rerun()
        if run["status"] == "running":
            st.caption("A running run can be archived or deleted once it has ended.")
            return
        left, right = st.columns(2)
        if run.get("archived_at") is not None:
            if left.button("Restore", key=f"restore_{run_id}", icon=":material/unarchive:",
                           help="show it again with the other runs"):
                safely(data.restore, path, [run_id])
                st.rerun()
        elif left.button("Archive", key=f"archive_{run_id}", icon=":material/archive:",
                         help="hide it from the pages, summaries and the CLI (see it with 'Show archived runs'); "
                              "restorable"):
            safely(data.archive, path, [run_id])
            st.rerun()
        sure = right.checkbox("Delete for good: the run, its predictions, epochs and files", key=f"sure_{run_id}")
        if right.button("Delete run", key=f"delete_{run_id}", type="primary", icon=":material/delete_forever:",
                        disabled=not sure):
            safely(data.delete, path, [run_id])
            st.query_params.pop("run", None)
            st.rerun()
