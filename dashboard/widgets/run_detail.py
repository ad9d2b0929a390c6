"""The detail of one run: its outcome (clustering scores for a clustering run), parameters, confusion
matrix (classes × clusters for clustering, class names on the axes) and per-epoch curves."""

from __future__ import annotations

import streamlit as st

from toptune.dashboard import charts, data
from toptune.dashboard.widgets.ui import safely

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
    st.badge(run["status"], color=data.STATUS_COLOURS.get(run["status"], "gray"))
    names = " · ".join(str(run[k]) for k in ("method", "backbone", "classifier", "dataset") if run.get(k))
    st.markdown(f"**{names}** · seed {run['seed']} · created {run['created_at']:%Y-%m-%d %H:%M:%S} UTC")
    if run.get("error"):
        st.error(run["error"])
    if run.get("model_bytes"):
        st.page_link("views/predict.py", label=f"Predict with this run's model ({run['model_bytes'] / 2**20:.1f} MB)",
                     icon=":material/image_search:", query_params={"run": run_id})
    _metrics(run)
    clusters = run["method"] == "cluster"
    tabs = st.tabs(["Parameters", "Classes × clusters" if clusters else "Confusion matrix", "Epochs", "Info"])
    with tabs[0]:
        st.json(run.get("params") or {}, expanded=2)
    with tabs[1]:
        _confusion(path, run, clusters)
        if not clusters and run["status"] == "finished":
            _misclassified(path, run)
    with tabs[2]:
        _epochs(path, run_id, run["method"])
    with tabs[3]:
        st.json({k: run.get(k) for k in INFO}, expanded=1)


def _metrics(run: dict) -> None:
    scores = dict(run.get("metrics") or {})
    if scores.get("pipeline") == "kmeans":  # clusters the features themselves: no latent code
        for key in ("latent", "latent_bytes_per_image"):
            scores.pop(key, None)
    shown = [(label, fmt.format(scores[key])) for key, label, fmt in CLUSTER_METRICS if scores.get(key) is not None]
    shown += [(label, fmt.format(run[key])) for key, label, fmt in METRICS if run.get(key) is not None]
    for start in range(0, len(shown), PER_ROW):
        for column, (label, value) in zip(st.columns(PER_ROW), shown[start:start + PER_ROW]):
            column.metric(label, value)


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
    st.plotly_chart(charts.epoch_figure(curves), key="epochs")
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
