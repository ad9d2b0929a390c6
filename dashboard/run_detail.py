"""The detail of one run: its outcome, parameters, confusion matrix and, for fine-tuning, its curves."""

from __future__ import annotations

import streamlit as st
from toptune.dashboard import charts, data
from toptune.dashboard.ui import safely

METRICS = [("accuracy", "accuracy", "{:.4f}"), ("train_time_s", "training time", "{:.2f} s"),
           ("extract_time_s", "extraction", "{:.2f} s"), ("fit_time_s", "fit", "{:.2f} s"),
           ("predict_time_s", "prediction", "{:.2f} s"), ("peak_memory_mb", "peak memory", "{:.0f} MB"),
           ("trained_params", "trained parameters", "{:,}"), ("energy_kwh", "energy (estimate)", "{:.2g} kWh")]
PER_ROW = 4


def show(path, run_id: str) -> None:
    run = safely(data.run_detail, path, run_id)
    st.badge(run["status"], color=data.STATUS_COLOURS.get(run["status"], "gray"))
    names = " · ".join(str(run[k]) for k in ("method", "backbone", "classifier", "dataset") if run.get(k))
    st.markdown(f"**{names}** · seed {run['seed']} · created {run['created_at']:%Y-%m-%d %H:%M:%S} UTC")
    if run.get("error"):
        st.error(run["error"])
    _metrics(run)
    tabs = st.tabs(["Parameters", "Confusion matrix", "Epochs", "Info"])
    with tabs[0]:
        st.json(run.get("params") or {}, expanded=2)
    with tabs[1]:
        _confusion(path, run_id)
    with tabs[2]:
        _epochs(path, run_id, run["method"])
    with tabs[3]:
        st.json({k: run.get(k) for k in ("info", "spec", "metrics", "device", "host", "n_train", "n_test",
                                         "n_classes", "feature_dim", "cache_hit", "comparison_id",
                                         "energy_source", "toptune_version")}, expanded=1)


def _metrics(run: dict) -> None:
    shown = [(label, fmt.format(run[key])) for key, label, fmt in METRICS if run.get(key) is not None]
    for start in range(0, len(shown), PER_ROW):
        for column, (label, value) in zip(st.columns(PER_ROW), shown[start:start + PER_ROW]):
            column.metric(label, value)


def _confusion(path, run_id: str) -> None:
    matrix = safely(data.confusion_matrix, path, run_id)
    if matrix.empty:
        st.caption("No test predictions recorded for this run.")
        return
    st.plotly_chart(charts.confusion_heatmap(matrix), key="confusion")


def _epochs(path, run_id: str, method: str) -> None:
    curves = safely(data.epoch_curves, path, run_id)
    if curves.empty:
        st.caption("Per-epoch curves exist for fine-tuning runs only." if method != "fine-tune"
                   else "No epoch recorded (yet).")
        return
    st.plotly_chart(charts.epoch_figure(curves), key="epochs")
    st.dataframe(curves.drop(columns=["run_id"]), hide_index=True)
