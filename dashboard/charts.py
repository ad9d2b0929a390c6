"""Plotly figures for the dashboard: pure functions from frames to figures, so tests can read them."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
from plotly.subplots import make_subplots
from toptune.compare import FINE, SAME_BAND_POINTS, TOP

METHOD_COLOURS = {TOP: "#1f77b4", FINE: "#d62728"}
HOVER = ["backbone", "classifier", "dataset", "seed"]
AXIS_LABELS = {"accuracy": "test accuracy (mean ± std)", "train_time_s": "training time (s, mean ± std)"}
NO_VALUE = {"classifier": "(fine-tuning: linear head)"}


def pareto_front(df: pd.DataFrame, x: str = "train_time_s", y: str = "accuracy") -> pd.DataFrame:
    """Rows no other row beats on both axes (less time, more accuracy), fastest first."""
    points = df.dropna(subset=[x, y]).sort_values([x, y], ascending=[True, False])
    best, keep = float("-inf"), []
    for index, value in zip(points.index, points[y]):
        if value > best:
            keep.append(index)
            best = value
    return points.loc[keep]


def tradeoff_scatter(runs: pd.DataFrame) -> go.Figure:
    """Accuracy against training time (log), coloured by method, with each dataset's Pareto front.

    Accuracies of different datasets do not compete, so each dataset gets its own front (and marker
    symbol). A front is drawn as the best accuracy reachable within a time budget: a step line from the
    fastest run to the slowest time on the chart.
    """
    several = runs["dataset"].nunique() > 1
    fig = px.scatter(runs, x="train_time_s", y="accuracy", color="method", symbol="dataset" if several else None,
                     log_x=True, hover_name="id", hover_data=[c for c in HOVER if c in runs],
                     color_discrete_map=METHOD_COLOURS,
                     labels={"train_time_s": "training time (s, log)", "accuracy": "test accuracy"})
    fig.update_traces(marker={"size": 11, "opacity": 0.85})
    slowest = runs["train_time_s"].max()
    for dash, (dataset, group) in zip(("dash", "dot", "dashdot", "longdash") * 8, runs.groupby("dataset")):
        front = pareto_front(group)
        x, y = [*front["train_time_s"], slowest], [*front["accuracy"], front["accuracy"].iloc[-1]]
        fig.add_trace(go.Scatter(x=x, y=y, mode="lines", name=f"Pareto front · {dataset}", hoverinfo="skip",
                                 line={"shape": "hv", "dash": dash, "color": "#555", "width": 1.5}))
    return fig


def delta_bars(comparisons: pd.DataFrame) -> go.Figure:
    """Δaccuracy (top − fine, points) per dataset and setup, over the ±1-point band where both are 'same'."""
    fig = px.bar(comparisons, x="dataset", y="delta_points", color="setup", barmode="group",
                 error_y="delta_std_points", hover_data=["comparison_id", "verdict", "seeds"],
                 labels={"delta_points": "Δaccuracy, top − fine (points)"})
    fig.add_hrect(y0=-SAME_BAND_POINTS, y1=SAME_BAND_POINTS, fillcolor="gray", opacity=0.2, line_width=0,
                  annotation_text=f"same (±{SAME_BAND_POINTS:g} point)", annotation_position="top left")
    fig.add_hline(y=0, line_color="#444", line_width=1)
    return fig


def speedup_bars(comparisons: pd.DataFrame) -> go.Figure:
    """Fine-tuning time over top-tuning time per dataset and setup, log scale (1× = equal)."""
    fig = px.bar(comparisons, x="dataset", y="speedup", color="setup", barmode="group", log_y=True,
                 hover_data=["comparison_id", "top_time_s", "fine_time_s"],
                 labels={"speedup": "speed-up of top-tuning (×, log)"})
    fig.add_hline(y=1, line_dash="dot", line_color="#444")
    return fig


def ablation_bars(runs: pd.DataFrame, by: str, value: str, log: bool = False) -> go.Figure:
    """Mean ± std of ``value`` over finished runs grouped by ``by``, one bar per method."""
    data = runs.assign(**{by: runs[by].fillna(NO_VALUE.get(by, "(none)"))})
    stats = data.groupby([by, "method"])[value].agg(["mean", "std", "count"]).reset_index()
    fig = px.bar(stats, x=by, y="mean", color="method", barmode="group", error_y=stats["std"].fillna(0.0),
                 log_y=log, hover_data=["count"], color_discrete_map=METHOD_COLOURS,
                 labels={"mean": AXIS_LABELS[value] + (", log" if log else ""), "count": "runs"})
    return fig


def confusion_heatmap(matrix: pd.DataFrame) -> go.Figure:
    fig = px.imshow(matrix, text_auto=True, color_continuous_scale="Blues", aspect="equal",
                    labels={"x": "predicted class", "y": "true class", "color": "test images"})
    fig.update_xaxes(type="category")
    fig.update_yaxes(type="category")
    return fig


def epoch_figure(epochs: pd.DataFrame) -> go.Figure:
    """Training loss, and train/validation accuracy, per epoch of a fine-tuning run."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("training loss", "accuracy"))
    fig.add_trace(go.Scatter(x=epochs["epoch"], y=epochs["train_loss"], name="train loss", mode="lines+markers"),
                  row=1, col=1)
    for column, name in (("train_accuracy", "train accuracy"), ("val_accuracy", "validation accuracy")):
        if epochs[column].notna().any():
            fig.add_trace(go.Scatter(x=epochs["epoch"], y=epochs[column], name=name, mode="lines+markers"),
                          row=1, col=2)
    fig.update_xaxes(title_text="epoch", dtick=1)
    return fig
