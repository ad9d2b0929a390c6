"""Plotly figures for the dashboard: pure functions from frames to figures, so tests can read them."""

from __future__ import annotations

import math

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from toptune.studies.compare import FINE, SAME_BAND_POINTS, TOP

METHOD_COLOURS = {TOP: "#1f77b4", FINE: "#d62728"}
HOVER = ["backbone", "classifier", "dataset", "seed"]
AXIS_LABELS = {"accuracy": "test accuracy (mean ± std)", "train_time_s": "training time (s, mean ± std)"}
NO_VALUE = {"classifier": "(fine-tuning: linear head)"}


def log_ticks(values) -> dict:
    """Axis settings labelling a log axis at 1-2-5 steps in full ("20", not plotly's bare "2").

    Over less than a decade plotly labels the ticks between powers of ten with their first digit only,
    which reads as 10, 2, 3 for 10, 20, 30.
    """
    finite = [float(v) for v in values if v is not None and math.isfinite(float(v)) and float(v) > 0]
    if not finite:
        return {}
    low, high = math.floor(math.log10(min(finite))), math.ceil(math.log10(max(finite)))
    ticks = [m * 10.0**e for e in range(low, high + 1) for m in (1, 2, 5)]
    return {"tickvals": ticks, "ticktext": [f"{t:g}" for t in ticks]}


def pareto_front(df: pd.DataFrame, x: str = "train_time_s", y: str = "accuracy") -> pd.DataFrame:
    """Rows no other row beats on both axes (less time, more accuracy), fastest first."""
    points = df.dropna(subset=[x, y]).sort_values([x, y], ascending=[True, False])
    best, keep = float("-inf"), []
    for index, value in zip(points.index, points[y]):
        if value > best:
            keep.append(index)
            best = value
    return points.loc[keep]


def tradeoff_scatter(runs: pd.DataFrame, total: int | None = None) -> go.Figure:
    """Accuracy against training time (log), coloured by method, with each dataset's Pareto front.

    Accuracies of different datasets do not compete, so each dataset gets its own front (and marker
    symbol). A front is drawn as the best accuracy reachable within a time budget: a step line from the
    fastest run to the slowest time on the chart. Points are drawn by WebGL; when ``runs`` is a sample of
    ``total`` runs, the chart says so (the fronts come from every run).
    """
    several = runs["dataset"].nunique() > 1
    fig = px.scatter(runs, x="train_time_s", y="accuracy", color="method", symbol="dataset" if several else None,
                     log_x=True, hover_name="id", hover_data=[c for c in HOVER if c in runs],
                     color_discrete_map=METHOD_COLOURS, render_mode="webgl",
                     category_orders={"method": sorted(runs["method"].unique())},  # a steady legend; samples vary
                     labels={"train_time_s": "training time (s, log)", "accuracy": "test accuracy"})
    if total is not None and total > len(runs):
        fig.add_annotation(text=f"showing {len(runs):,} of {total:,} runs: a sample, with every Pareto front whole",
                           xref="paper", yref="paper", x=0, y=1.08, showarrow=False, xanchor="left")
    fig.update_traces(marker={"size": 11, "opacity": 0.85})
    slowest = runs["train_time_s"].max()
    for dash, (dataset, group) in zip(("dash", "dot", "dashdot", "longdash") * 8, runs.groupby("dataset")):
        front = pareto_front(group)
        x, y = [*front["train_time_s"], slowest], [*front["accuracy"], front["accuracy"].iloc[-1]]
        fig.add_trace(go.Scatter(x=x, y=y, mode="lines", name=f"Pareto front · {dataset}", hoverinfo="skip",
                                 line={"shape": "hv", "dash": dash, "color": "#555", "width": 1.5}))
    fig.update_xaxes(**log_ticks(runs["train_time_s"]))
    return fig


# What a comparison's bar says on hover: which comparison, its verdict and the settings it holds for.
SETTINGS_HOVER = ("comparison_id", "verdict", "image_size", "epochs", "preset", "seeds")
# Past this many comparisons, bars show each dataset and setup's mean (± std across its comparisons).
MANY_COMPARISONS = 60


def per_setup(comparisons: pd.DataFrame) -> pd.DataFrame:
    """One row per dataset and setup: mean Δ and speed-up, their spread across comparisons, and the count."""
    grouped = comparisons.groupby(["dataset", "setup"], as_index=False)
    out = grouped.agg(delta_points=("delta_points", "mean"), delta_std_points=("delta_points", "std"),
                      speedup=("speedup", "median"), top_time_s=("top_time_s", "mean"),
                      fine_time_s=("fine_time_s", "mean"), comparisons=("comparison_id", "count"))
    out["verdict"] = ""
    out["comparison_id"] = out["comparisons"].map(lambda n: f"{n} comparisons")
    out["seeds"] = ""
    return out.fillna({"delta_std_points": 0.0})


def delta_bars(comparisons: pd.DataFrame) -> go.Figure:
    """Δaccuracy (top − fine, points) per dataset and setup, over the ±1-point band where both are 'same'; one
    bar per comparison, or per dataset and setup (mean ± std) past ``MANY_COMPARISONS``."""
    if len(comparisons) > MANY_COMPARISONS:
        comparisons = per_setup(comparisons)
    fig = px.bar(comparisons, x="dataset", y="delta_points", color="setup", barmode="group",
                 error_y="delta_std_points", hover_data=[c for c in SETTINGS_HOVER if c in comparisons],
                 labels={"delta_points": "Δaccuracy, top − fine (points)"})
    fig.add_hrect(y0=-SAME_BAND_POINTS, y1=SAME_BAND_POINTS, fillcolor="gray", opacity=0.2, line_width=0,
                  annotation_text=f"same (±{SAME_BAND_POINTS:g} point)", annotation_position="top left")
    fig.add_hline(y=0, line_color="#444", line_width=1)
    return fig


def speedup_bars(comparisons: pd.DataFrame) -> go.Figure:
    """Fine-tuning time over top-tuning time per dataset and setup, log scale (1× = equal); past
    ``MANY_COMPARISONS`` comparisons, the median per dataset and setup."""
    if len(comparisons) > MANY_COMPARISONS:
        comparisons = per_setup(comparisons)
    fig = px.bar(comparisons, x="dataset", y="speedup", color="setup", barmode="group", log_y=True,
                 hover_data=["comparison_id", "top_time_s", "fine_time_s"],
                 labels={"speedup": "speed-up of top-tuning (×, log)"})
    fig.add_hline(y=1, line_dash="dot", line_color="#444")
    fig.update_yaxes(**log_ticks([1.0, *comparisons["speedup"]]))
    return fig


def ablation_bars(stats: pd.DataFrame, by: str, value: str, log: bool = False) -> go.Figure:
    """Mean ± std of ``value`` per ``by`` and method (``stats``: columns by, method, mean, std, count), one
    bar per method; a linear axis zooms to the bars, so differences of a point or two show."""
    stats = stats.assign(**{by: stats[by].fillna(NO_VALUE.get(by, "(none)"))})
    fig = px.bar(stats, x=by, y="mean", color="method", barmode="group", error_y=stats["std"].fillna(0.0),
                 log_y=log, hover_data=["count"], color_discrete_map=METHOD_COLOURS,
                 labels={"mean": AXIS_LABELS[value] + (", log" if log else ""), "count": "runs"})
    if log:
        fig.update_yaxes(**log_ticks(stats["mean"]))
    elif len(stats):
        spread = stats["std"].fillna(0.0)
        low, high = float((stats["mean"] - spread).min()), float((stats["mean"] + spread).max())
        margin = max((high - low) * 0.15, 1e-3)
        fig.update_yaxes(range=[max(0.0, low - margin), high + margin])
    return fig


def confusion_heatmap(matrix: pd.DataFrame, x_label: str = "predicted class",
                      count_label: str = "test images") -> go.Figure:
    fig = px.imshow(matrix, text_auto=True, color_continuous_scale="Blues", aspect="equal",
                    labels={"x": x_label, "y": "true class", "color": count_label})
    fig.update_xaxes(type="category")
    fig.update_yaxes(type="category")
    return fig


EPOCH_SERIES = {"train_loss": "train loss", "train_accuracy": "train accuracy", "val_accuracy": "validation accuracy"}


def _epoch_axes(fig: go.Figure, y_title: str, title: str) -> go.Figure:
    """An epoch chart's layout: a labelled y axis, whole epochs on x, its own legend under it (long run names
    wrap there instead of running into the title)."""
    fig.update_xaxes(title_text="epoch", dtick=1)
    fig.update_yaxes(title_text=y_title)
    fig.update_layout(title_text=title, legend={"orientation": "h", "yanchor": "top", "y": -0.22, "x": 0},
                      margin={"t": 50, "b": 40})
    return fig


def epoch_figures(epochs: pd.DataFrame) -> list[go.Figure]:
    """Per epoch, one chart each: the training loss, then train and validation accuracy when recorded (a VAE has
    none); every chart has its y axis labelled and its own legend."""
    loss = go.Figure(go.Scatter(x=epochs["epoch"], y=epochs["train_loss"], name="train loss", mode="lines+markers",
                                showlegend=True))
    figures = [_epoch_axes(loss, "training loss", "Training loss")]
    measured = [c for c in ("train_accuracy", "val_accuracy") if c in epochs and epochs[c].notna().any()]
    if measured:
        accuracy = go.Figure([go.Scatter(x=epochs["epoch"], y=epochs[c], name=EPOCH_SERIES[c], mode="lines+markers")
                              for c in measured])
        figures.append(_epoch_axes(accuracy, "accuracy", "Accuracy"))
    return figures


def epoch_overlay(curves: pd.DataFrame, column: str) -> go.Figure:
    """One epoch series (``column``) of several runs on one chart, a line per run (``curves``: columns run,
    epoch, ``column``), for comparing runs side by side."""
    fig = go.Figure([go.Scatter(x=group["epoch"], y=group[column], name=str(run), mode="lines+markers")
                     for run, group in curves.dropna(subset=[column]).groupby("run", sort=False)])
    return _epoch_axes(fig, EPOCH_SERIES.get(column, column), EPOCH_SERIES.get(column, column).capitalize())


# ---- clustering ------------------------------------------------------------------------------------
PIPELINE_COLOURS = {"image-vae": "#ff7f0e", "feature-vae": "#1f77b4", "kmeans": "#555555"}
PIPELINE_NAMES = {"image-vae": "image VAE", "feature-vae": "feature VAE", "kmeans": "k-means on features"}


def purity_vs_latent(points: pd.DataFrame) -> go.Figure:
    """Purity (mean ± std over seeds) against Z per VAE pipeline; k-means, which has no Z, as a flat band.

    ``points`` is ``Study.points()``: one row per (pipeline, Z) with purity, purity_std, overlaps….
    """
    fig = go.Figure()
    vaes = points[points["latent"].notna()]
    for pipeline, group in vaes.groupby("pipeline", sort=False):
        fig.add_trace(go.Scatter(
            x=group["latent"], y=group["purity"], error_y={"type": "data", "array": group["purity_std"]},
            mode="lines+markers", name=PIPELINE_NAMES.get(pipeline, pipeline),
            line_color=PIPELINE_COLOURS.get(pipeline),
            customdata=group[["overlaps", "overlaps_std", "n_runs"]],
            hovertemplate="Z=%{x}<br>purity %{y:.3f} ± %{error_y.array:.3f}<br>overlaps %{customdata[0]:.1f} ± "
                          "%{customdata[1]:.1f}<br>%{customdata[2]} run(s)<extra></extra>"))
    latents = sorted(vaes["latent"].unique())
    for row in points[points["pipeline"] == "kmeans"].itertuples():
        _flat_band(fig, row, latents or [1])
    wide = len(latents) > 1 and latents[-1] / latents[0] >= 10
    fig.update_xaxes(title_text="latent size Z" + (" (log)" if wide else ""), type="log" if wide else "linear",
                     tickvals=latents or None)
    fig.update_yaxes(title_text="purity (mean ± std over seeds)")
    return fig


def _flat_band(fig: go.Figure, row, latents: list) -> None:
    """k-means does not depend on Z: one line across every Z, with its ± std as a shaded band."""
    x = [latents[0], latents[-1]]
    low, high = row.purity - row.purity_std, row.purity + row.purity_std
    fig.add_trace(go.Scatter(x=[*x, *x[::-1]], y=[high, high, low, low], fill="toself", mode="none",
                             fillcolor="rgba(85,85,85,0.15)", hoverinfo="skip", showlegend=False))
    fig.add_trace(go.Scatter(
        x=x, y=[row.purity] * 2, mode="lines", name=PIPELINE_NAMES["kmeans"],
        line={"color": PIPELINE_COLOURS["kmeans"], "dash": "dash"},
        hovertemplate=f"k-means on features (any Z)<br>purity {row.purity:.3f} ± {row.purity_std:.3f}<br>"
                      f"overlaps {row.overlaps:.1f} ± {row.overlaps_std:.1f}<extra></extra>"))


def _natural(value) -> tuple:
    """Sort key putting '2' before '10' (cluster ids as text)."""
    text = str(value)
    return (0, int(text), "") if text.isdigit() else (1, 0, text)


def latent_scatter(points: pd.DataFrame, by: str, title: str, order: list | None = None) -> go.Figure:
    """The 2-D projection of a run's latent codes, one colour per value of ``by`` (cluster or class).

    ``order`` fixes the legend (a dataset's own class order); by default values sort naturally.
    """
    present = set(points[by])
    order = [v for v in order if v in present] if order else sorted(present, key=_natural)
    fig = px.scatter(points, x="x", y="y", color=by, category_orders={by: order}, title=title,
                     hover_data=["sample", "cluster", "class"], labels={"x": "component 1", "y": "component 2"})
    fig.update_traces(marker={"size": 6, "opacity": 0.8})
    fig.update_layout(legend_title_text=by)
    return fig


# ---- sweeps ----------------------------------------------------------------------------------------
# Waiting and failed cells get a fixed colour each (the badges' colours); finished ones a shade of their score.
SWEEP_STATUS_COLOURS = {"failed": "#ff4b4b", "interrupted": "#ffa421", "running": "#1c83e1", "queued": "#a3a8b8",
                        "not run": "#e6e8ee", "finished": "#21c354"}  # the last: finished without a score


def _layer(cells: pd.DataFrame, rows: list, columns: list, value) -> list[list]:
    """A rows × columns matrix of ``value(cell)``; None where the grid has no cell."""
    at = {(c["row"], c["column"]): c for c in cells.to_dict("records")}
    return [[value(at[(r, c)]) if (r, c) in at else None for c in columns] for r in rows]


def _scored(cell: dict) -> bool:
    return cell["status"] == "finished" and pd.notna(cell["score"])


def _discrete_scale(colours: list[str]) -> list[list]:
    """A colour scale giving the integer code i (with zmin -0.5, zmax n - 0.5) exactly colours[i]."""
    n = len(colours)
    return [[edge / n, colour] for i, colour in enumerate(colours) for edge in (i, i + 1)]


def sweep_heatmap(cells: pd.DataFrame) -> go.Figure:
    """The sweep's grid: rows dataset · backbone · method, columns classifier · params · seed.

    Two heatmaps share the grid: finished cells coloured by score (accuracy, or purity for clustering),
    the others by status. Each shows its score or status as text; hovering shows the spec and any error.
    """
    rows, columns = list(dict.fromkeys(cells["row"])), list(dict.fromkeys(cells["column"]))
    codes = {s: i for i, s in enumerate(SWEEP_STATUS_COLOURS)}
    status = _layer(cells, rows, columns, lambda c: None if _scored(c) else codes.get(c["status"]))
    score = _layer(cells, rows, columns, lambda c: c["score"] if _scored(c) else None)
    status_text = _layer(cells, rows, columns, lambda c: "" if _scored(c) else c["status"])
    score_text = _layer(cells, rows, columns, lambda c: f"{c['score']:.3f}" if _scored(c) else "")
    hover = _layer(cells, rows, columns, lambda c: c["hover"])
    scale = _discrete_scale(list(SWEEP_STATUS_COLOURS.values()))
    common = {"x": columns, "y": rows, "texttemplate": "%{text}", "customdata": hover,
              "hovertemplate": "%{customdata}<extra></extra>", "hoverongaps": False, "xgap": 3, "ygap": 3}
    fig = go.Figure([
        go.Heatmap(z=status, colorscale=scale, zmin=-0.5, zmax=len(codes) - 0.5, showscale=False, name="status",
                   text=status_text, **common),
        go.Heatmap(z=score, colorscale="Greens", zmin=0, zmax=1, name="score", text=score_text,
                   colorbar={"title": {"text": "score"}, "thickness": 14}, **common)])
    fig.update_xaxes(type="category", tickangle=-30, side="top")
    fig.update_yaxes(type="category", autorange="reversed")
    fig.update_layout(height=110 + max(150, 50 * len(rows)), margin={"t": 90, "b": 20})
    return fig


# ---- research studies ------------------------------------------------------------------------------
SHIFT_UNITS = {"awgn": "noise σ on [0, 1] pixels", "blur": "blur σ (input pixels)",
               "embedding": "offset norm (feature units)"}
RULE_COLOURS = {"entropy-high": "#d62728", "entropy-low": "#1f77b4", "random": "#7f7f7f", "error": "#ff7f0e"}


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
