"""``toptune robustness`` and ``toptune select-study``: the research studies from the command line."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.table import Table

from ..params import parse_assignments
from ..spec import DEFAULT_BACKBONE, DEFAULT_DATASET
from ..store import Store
from .common import CacheOpt, Commands, DataOpt, ParamOpt, QuietOpt, StoreOpt, csv_list, out, progress, with_data

commands = Commands()
register = commands.register


def _levels_table(title: str, first: str, columns: list[str], rows) -> Table:
    out.print(f"[bold]{title}[/]", highlight=False)  # above the table: a title would wrap to its width
    table = Table(header_style="bold")
    table.add_column(first)
    for c in columns:
        table.add_column(c, justify="right")
    for name, cells in rows:
        table.add_row(name, *cells)
    return table


@commands.command()
def robustness(
    dataset: str = typer.Option(DEFAULT_DATASET, help="dataset plugin"),
    backbone: str = typer.Option(DEFAULT_BACKBONE, help="backbone plugin"),
    shift: str = typer.Option("awgn", help="awgn (pixel noise σ) | blur (σ in pixels) | embedding (offset norm)"),
    levels: str | None = typer.Option(None, help="shift strengths, comma-separated; 0 is the clean baseline "
                                         "[default: awgn 0,0.05,0.1,0.2 · blur 0,1,2,4 · embedding 0,5,10,20]"),
    shift_on: str = typer.Option("test", help="which split is shifted: train | test | both"),
    classifiers: str = typer.Option("kernel", help="top-tuning classifiers, comma-separated"),
    with_fine_tune: bool = typer.Option(False, "--with-fine-tune", help="also fine-tune at every level"),
    seeds: int | None = typer.Option(None, min=1, help="seeds 0..N-1 [default: 3 (gpu preset), 1 (cpu)]"),
    preset: str = typer.Option("auto", help="auto | gpu | cpu (128 px, 3 fine-tuning epochs), as for compare"),
    param: list[str] = ParamOpt,
    top_param: list[str] = typer.Option([], "--top-param", help="key=value for top-tuning runs only"),
    fine_param: list[str] = typer.Option([], "--fine-param", help="key=value for fine-tuning runs only"),
    data: str | None = DataOpt,
    store: Path | None = StoreOpt,
    cache_dir: Path | None = CacheOpt,
    quiet: bool = QuietOpt,
):
    """Accuracy as the data drifts: one run per shift level and method/classifier, linked by a study_id."""
    from ..features.cache import FeatureCache
    from ..studies import robustness as rob

    shared = with_data(parse_assignments(param), data)
    values = rob.parse_levels(levels, shift) if levels else None
    specs = rob.plan(dataset, backbone, shift, values, csv_list(classifiers), with_fine_tune, seeds, shift_on, shared,
                     parse_assignments(top_param), parse_assignments(fine_param), preset)
    st, t0 = Store(store), time.perf_counter()
    study = rob.run_study(specs, st, cache=FeatureCache(cache_dir), progress=progress(quiet))
    title = (f"{study.dataset} · {study.backbone} · {study.shift} on {study.shift_on} · study {study.study_id} · "
             "test accuracy")
    out.print(_levels_table(title, "method", [f"{level:g}" for level in study.levels], study.table()))
    out.print(f"{len(study.run_ids)} runs in {time.perf_counter() - t0:.0f} s · store: {st.path.resolve()}")


@commands.command("select-study")
def select_study(
    dataset: str = typer.Option(DEFAULT_DATASET, help="dataset plugin"),
    backbone: str = typer.Option(DEFAULT_BACKBONE, help="backbone plugin"),
    fractions: str = typer.Option("0.25,0.5", help="subset sizes as fractions of train, comma-separated"),
    rules: str = typer.Option("entropy-high,entropy-low,random", help="selection rules to compare "
                              "(random, entropy-high, entropy-low, error)"),
    seeds: int | None = typer.Option(None, min=1, help="seeds 0..N-1 [default: 3 (gpu preset), 1 (cpu)]"),
    preset: str = typer.Option("auto", help="auto | gpu | cpu (128 px, 3 epochs at lr 1e-3), as for compare"),
    param: list[str] = ParamOpt,
    data: str | None = DataOpt,
    store: Path | None = StoreOpt,
    cache_dir: Path | None = CacheOpt,
    quiet: bool = QuietOpt,
):
    """Fine-tune on subsets chosen by entropy or at random, at equal sizes, linked by a study_id."""
    from ..features.cache import FeatureCache
    from ..studies import selection as sel

    shared = with_data(parse_assignments(param), data)
    specs = sel.plan(dataset, backbone, sel.parse_fractions(fractions), csv_list(rules), seeds, shared, preset)
    st, t0 = Store(store), time.perf_counter()
    study = sel.run_study(specs, st, cache=FeatureCache(cache_dir), progress=progress(quiet))
    columns = [f"{f:g} ({study.subset_sizes[f]} images)" for f in study.fractions]
    out.print(_levels_table(f"{study.dataset} · {study.backbone} · study {study.study_id} · fine-tuned test accuracy",
                            "rule", columns, study.table()))
    out.print(f"{len(study.run_ids)} runs in {time.perf_counter() - t0:.0f} s · store: {st.path.resolve()}")
