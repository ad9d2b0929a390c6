"""The page of a study kind: pick one study, then its chart, its table and every figure.

Robustness and data selection draw the same page from a ``StudyPage``; a new study kind's page is one
more ``StudyPage`` and a two-line script in ``views/``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from toptune.dashboard import charts, data
from toptune.dashboard.widgets.ui import nothing_yet, pick_study, safely


@dataclass(frozen=True)
class StudyPage:
    study: str  # the engine's STUDIES name
    title: str
    caption: str
    empty: str  # what to run when the store has no study of this kind
    label: Callable[[object], str]  # a study in the chooser
    chart_title: Callable[[object], str]
    chart: Callable[[pd.DataFrame, object], go.Figure]  # (points, study) -> figure
    chart_caption: Callable[[object], str]
    columns: Callable[[object], list[str]]  # the table's value columns, after its first
    first_column: str


def _robustness_label(study) -> str:
    levels = ",".join(f"{v:g}" for v in study.levels)
    return (f"{study.study_id} · {study.dataset} · {study.backbone} · {study.shift} on {study.shift_on} · "
            f"levels {levels} · {len(study.run_ids)} runs · {study.created_at:%Y-%m-%d %H:%M}")


def _selection_label(study) -> str:
    fractions = ",".join(f"{f:g}" for f in study.fractions)
    return (f"{study.study_id} · {study.dataset} · {study.backbone} · fractions {fractions} · "
            f"{len(study.run_ids)} runs · {study.created_at:%Y-%m-%d %H:%M}")


ROBUSTNESS = StudyPage(
    "robustness", "Robustness to covariate shift",
    "How a transferred model holds up when the images drift: Gaussian pixel noise, blur, or an offset added to "
    "the features, on the training split, the test split or both.",
    "No robustness study yet: `toptune robustness --dataset digits --shift awgn --levels 0,0.05,0.1,0.2 "
    "--classifiers kernel,ridge` runs one.",
    _robustness_label, lambda s: f"Accuracy vs {s.shift} strength",
    lambda points, s: charts.robustness_chart(points, s.shift),
    lambda s: f"Shifted split: **{s.shift_on}**. Strength 0 is the clean baseline. Points are the mean over "
              "seeds; bars show the standard deviation when there are several.",
    lambda s: [f"{v:g}" for v in s.levels], "method")

SELECTION = StudyPage(
    "select-study", "Data selection for fine-tuning",
    "Which training images are worth fine-tuning on: the ones a classifier on the pre-trained features is least "
    "sure of (entropy-high), most sure of (entropy-low), or a random draw, at equal sizes.",
    "No selection study yet: `toptune select-study --dataset digits --fractions 0.25,0.5` runs one.",
    _selection_label, lambda s: "Accuracy per rule and subset size",
    lambda points, s: charts.selection_chart(points),
    lambda s: "Each bar is the mean test accuracy over seeds of fine-tuning on the chosen subset; error bars "
              "show the standard deviation when there are several seeds.",
    lambda s: [f"{f:g} ({s.subset_sizes[f]} images)" for f in s.fractions], "rule")


def show(page: StudyPage) -> None:
    path = data.store_path()
    st.title(page.title)
    st.caption(page.caption)
    index = safely(data.study_index, path, page.study)
    if index.empty:
        nothing_yet(path, page.empty)
    study = safely(data.study_summary, path, page.study, pick_study(index))
    if study is None:
        st.warning("No finished run in this study yet.")
        st.stop()
    st.caption(page.label(study))
    points = data.points_frame(study)
    st.subheader(page.chart_title(study))
    st.plotly_chart(page.chart(points, study), key=f"{page.study}_chart")
    st.caption(page.chart_caption(study))
    st.dataframe(pd.DataFrame([[name, *cells] for name, cells in study.table()],
                              columns=[page.first_column, *page.columns(study)]),
                 hide_index=True, key=f"{page.study}_table")
    with st.expander("Every figure"):
        st.dataframe(points, hide_index=True, key=f"{page.study}_points")
