"""Data and figures of the Robustness and Selection pages, read through the engine's study summaries.

A store file that does not exist reads as having no studies (looking must not create it). Figures are
pure functions of a study's points, so tests can read them back.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
from toptune import robustness, select_study
from toptune.store import Store

SHIFT_UNITS = {"awgn": "noise σ on [0, 1] pixels", "blur": "blur σ (input pixels)",
               "embedding": "offset norm (feature units)"}
RULE_COLOURS = {"entropy-high": "#d62728", "entropy-low": "#1f77b4", "random": "#7f7f7f", "error": "#ff7f0e"}


def robustness_studies(path) -> list[robustness.RobustnessStudy]:
    return robustness.studies(Store(path)) if Path(path).exists() else []


def selection_studies(path) -> list[select_study.SelectionStudy]:
    return select_study.studies(Store(path)) if Path(path).exists() else []


def robustness_frame(study: robustness.RobustnessStudy) -> pd.DataFrame:
    return pd.DataFrame(study.points(), columns=["series", "level", "accuracy", "accuracy_std", "train_time_s",
                                                 "n_runs"])


def selection_frame(study: select_study.SelectionStudy) -> pd.DataFrame:
    return pd.DataFrame(study.points(), columns=["rule", "fraction", "subset_size", "accuracy", "accuracy_std",
                                                 "train_time_s", "n_runs"])


def robustness_chart(points: pd.DataFrame, shift: str) -> go.Figure:
    """Test accuracy against shift strength, one line per method (and classifier), ± std over seeds."""
    fig = px.line(points.sort_values("level"), x="level", y="accuracy", color="series", markers=True,
                  error_y="accuracy_std", hover_data=["n_runs", "train_time_s"],
                  labels={"level": SHIFT_UNITS.get(shift, "shift strength"), "accuracy": "test accuracy",
                          "series": "method · classifier"})
    fig.update_yaxes(rangemode="tozero")
    return fig


def selection_chart(points: pd.DataFrame) -> go.Figure:
    """Fine-tuned test accuracy per subset fraction, one bar per rule, ± std over seeds."""
    shown = points.assign(subset=[f"{f:g} ({n} images)" for f, n in zip(points["fraction"], points["subset_size"])])
    fig = px.bar(shown, x="subset", y="accuracy", color="rule", barmode="group", error_y="accuracy_std",
                 color_discrete_map=RULE_COLOURS, hover_data=["n_runs", "train_time_s"],
                 labels={"subset": "training subset (fraction of train)", "accuracy": "test accuracy"})
    fig.update_yaxes(rangemode="tozero")
    return fig


def pick_study(studies: list, label) -> object:
    """A study chosen in a select box, newest first; the URL's ``study`` picks it, and keeps the choice."""
    import streamlit as st

    labels = {s.study_id: label(s) for s in reversed(studies)}
    wanted = st.query_params.get("study")
    study_id = st.selectbox("Study", list(labels), format_func=labels.get, key="study_choice",
                            index=list(labels).index(wanted) if wanted in labels else 0)
    st.query_params["study"] = study_id
    return next(s for s in studies if s.study_id == study_id)
