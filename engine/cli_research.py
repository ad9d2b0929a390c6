"""``toptune backbones describe``, ``toptune robustness`` and ``toptune select-study`` (registered on the app)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import List, Optional

import typer
from rich.table import Table

from .cli import StoreOpt, _list_plugins, _progress, app, guarded, out
from .params import parse_assignments
from .spec import DEFAULT_BACKBONE, DEFAULT_DATASET
from .store import Store

backbones_app = typer.Typer(help="List backbone plugins, or show one's layers: toptune backbones describe NAME.")
app.add_typer(backbones_app, name="backbones")


@backbones_app.callback(invoke_without_command=True)
@guarded
def backbones(ctx: typer.Context):
    """List backbone plugins."""
    if ctx.invoked_subcommand is None:
        _list_plugins("backbone")


@backbones_app.command("describe")
@guarded
def describe(
    name: str = typer.Argument(..., help="backbone, e.g. efficientnet_lite0 or timm:resnet50"),
    param: List[str] = typer.Option([], "--param", "-p", help="backbone parameter key=value (repeatable)"),
    weights: Optional[str] = typer.Option(None, help="weights: a file, 'none' (offline, random) or 'timm'"),
    image_size: Optional[int] = typer.Option(None, min=16, help="input size instead of the backbone's"),
):
    """Input size and every stage and block usable as feature_mode=layer:<name>, with its feature size."""
    from .backbone_describe import describe as describe_backbone

    params = parse_assignments(param)
    if weights:
        params["weights"] = weights
    d = describe_backbone(name, params, image_size)
    out.print(f"[bold]{name}[/]: input {d.input_size}×{d.input_size} px · pooled features: {d.pooled_dim}"
              + (f" · fne features: {d.fne_dim}" if d.layers else ""), highlight=False)
    if not d.layers:
        out.print(d.note or "no layers found", highlight=False)
        return
    table = Table(header_style="bold")
    for col in ("feature_mode", "kind", "output shape (C×H×W)", "features"):
        table.add_column(col, justify="right" if col == "features" else "left")
    for layer in d.layers:
        mode = layer.mode if layer.kind == "stage" else f"  {layer.mode}"
        table.add_row(mode, layer.kind, "×".join(map(str, layer.shape)), str(layer.dim))
    out.print(table)
    out.print("fne = every stage above (pooled) + the pooled output, standardised with train statistics and "
              "discretised to -1/0/+1", highlight=False)


def _levels_table(title: str, first: str, columns: list[str], rows) -> Table:
    out.print(f"[bold]{title}[/]", highlight=False)  # above the table: a title would wrap to its width
    table = Table(header_style="bold")
    table.add_column(first)
    for c in columns:
        table.add_column(c, justify="right")
    for name, cells in rows:
        table.add_row(name, *cells)
    return table


def _csv(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


@app.command()
@guarded
def robustness(
    dataset: str = typer.Option(DEFAULT_DATASET, help="dataset plugin"),
    backbone: str = typer.Option(DEFAULT_BACKBONE, help="backbone plugin"),
    shift: str = typer.Option("awgn", help="awgn (pixel noise σ) | blur (σ in pixels) | embedding (offset norm)"),
    levels: Optional[str] = typer.Option(None, help="shift strengths, comma-separated; 0 is the clean baseline "
                                         "[default: awgn 0,0.05,0.1,0.2 · blur 0,1,2,4 · embedding 0,5,10,20]"),
    shift_on: str = typer.Option("test", help="which split is shifted: train | test | both"),
    classifiers: str = typer.Option("kernel", help="top-tuning classifiers, comma-separated"),
    with_fine_tune: bool = typer.Option(False, "--with-fine-tune", help="also fine-tune at every level"),
    seeds: Optional[int] = typer.Option(None, min=1, help="seeds 0..N-1 [default: 3 (gpu preset), 1 (cpu)]"),
    preset: str = typer.Option("auto", help="auto | gpu | cpu (128 px, 3 fine-tuning epochs), as for compare"),
    param: List[str] = typer.Option([], "--param", "-p", help="key=value for every run (repeatable)"),
    top_param: List[str] = typer.Option([], "--top-param", help="key=value for top-tuning runs only"),
    fine_param: List[str] = typer.Option([], "--fine-param", help="key=value for fine-tuning runs only"),
    data: Optional[str] = typer.Option(None, help="dataset path (shortcut for --param dataset.path=...)"),
    store: Optional[Path] = StoreOpt,
    cache_dir: Optional[Path] = typer.Option(None, envvar="TOPTUNE_CACHE_DIR", help="feature cache folder"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bars"),
):
    """Accuracy as the data drifts: one run per shift level and method/classifier, linked by a study_id."""
    from . import robustness as rob
    from .features import FeatureCache

    shared = parse_assignments(param)
    if data:
        shared["dataset.path"] = data
    values = rob.parse_levels(levels, shift) if levels else None
    specs = rob.plan(dataset, backbone, shift, values, _csv(classifiers), with_fine_tune, seeds, shift_on, shared,
                     parse_assignments(top_param), parse_assignments(fine_param), preset)
    st, t0 = Store(store), time.perf_counter()
    study = rob.run_study(specs, st, cache=FeatureCache(cache_dir), progress=_progress(quiet))
    title = (f"{study.dataset} · {study.backbone} · {study.shift} on {study.shift_on} · study {study.study_id} · "
             "test accuracy")
    out.print(_levels_table(title, "method", [f"{level:g}" for level in study.levels], study.table()))
    out.print(f"{len(study.run_ids)} runs in {time.perf_counter() - t0:.0f} s · store: {st.path.resolve()}")


@app.command("select-study")
@guarded
def select_study(
    dataset: str = typer.Option(DEFAULT_DATASET, help="dataset plugin"),
    backbone: str = typer.Option(DEFAULT_BACKBONE, help="backbone plugin"),
    fractions: str = typer.Option("0.25,0.5", help="subset sizes as fractions of train, comma-separated"),
    rules: str = typer.Option("entropy-high,entropy-low,random", help="selection rules to compare "
                              "(random, entropy-high, entropy-low, error)"),
    seeds: Optional[int] = typer.Option(None, min=1, help="seeds 0..N-1 [default: 3 (gpu preset), 1 (cpu)]"),
    preset: str = typer.Option("auto", help="auto | gpu | cpu (128 px, 3 epochs at lr 1e-3), as for compare"),
    param: List[str] = typer.Option([], "--param", "-p", help="key=value for every run (repeatable)"),
    data: Optional[str] = typer.Option(None, help="dataset path (shortcut for --param dataset.path=...)"),
    store: Optional[Path] = StoreOpt,
    cache_dir: Optional[Path] = typer.Option(None, envvar="TOPTUNE_CACHE_DIR", help="feature cache folder"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bars"),
):
    """Fine-tune on subsets chosen by entropy or at random, at equal sizes, linked by a study_id."""
    from . import select_study as sel
    from .features import FeatureCache

    shared = parse_assignments(param)
    if data:
        shared["dataset.path"] = data
    specs = sel.plan(dataset, backbone, sel.parse_fractions(fractions), _csv(rules), seeds, shared, preset)
    st, t0 = Store(store), time.perf_counter()
    study = sel.run_study(specs, st, cache=FeatureCache(cache_dir), progress=_progress(quiet))
    columns = [f"{f:g} ({study.subset_sizes[f]} images)" for f in study.fractions]
    out.print(_levels_table(f"{study.dataset} · {study.backbone} · study {study.study_id} · fine-tuned test accuracy",
                            "rule", columns, study.table()))
    out.print(f"{len(study.run_ids)} runs in {time.perf_counter() - t0:.0f} s · store: {st.path.resolve()}")
