"""``toptune robustness`` and ``toptune select-study``: the research studies from the command line."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from ..params import parse_assignments
from . import options as opt
from .common import Commands, csv_list, grid_table, out, plain, print_done, run_study, with_data

commands = Commands()
register = commands.register


def _levels_table(title: str, first: str, columns: list[str], rows) -> Table:
    out.print(plain(title), style="bold")  # above the table: a title would wrap to its width
    return grid_table(first, columns, rows)


@commands.command()
def robustness(
    dataset: str = opt.Dataset,
    backbone: str = opt.Backbone,
    shift: str = typer.Option("awgn", help="awgn (pixel noise σ) | blur (σ in pixels) | embedding (offset norm)"),
    levels: str | None = typer.Option(None, help="shift strengths, comma-separated; 0 is the clean baseline "
                                         "[default: awgn 0,0.05,0.1,0.2 · blur 0,1,2,4 · embedding 0,5,10,20]"),
    shift_on: str = typer.Option("test", help="which split is shifted: train | test | both"),
    classifiers: str = typer.Option("kernel", help="top-tuning classifiers, comma-separated"),
    with_fine_tune: bool = typer.Option(False, "--with-fine-tune", help="also fine-tune at every level"),
    seeds: int | None = opt.Seeds,
    preset: str = opt.Preset,
    param: list[str] = opt.Param,
    top_param: list[str] = opt.TopParam,
    fine_param: list[str] = opt.FineParam,
    data: str | None = opt.Data,
    store: Path | None = opt.Store,
    cache_dir: Path | None = opt.Cache,
    quiet: bool = opt.Quiet,
):
    """Accuracy as the data drifts: one run per shift level and method/classifier, linked by a study_id."""
    from ..studies import robustness as rob

    shared = with_data(parse_assignments(param), data)
    values = rob.parse_levels(levels, shift) if levels else None
    specs = rob.plan(dataset, backbone, shift, values, csv_list(classifiers), with_fine_tune, seeds, shift_on, shared,
                     parse_assignments(top_param), parse_assignments(fine_param), preset)
    study, st, seconds = run_study(rob.STUDY, specs, store, cache_dir, quiet)
    title = (f"{study.dataset} · {study.backbone} · {study.shift} on {study.shift_on} · study {study.study_id} · "
             "test accuracy")
    out.print(_levels_table(title, "method", [f"{level:g}" for level in study.levels], study.table()))
    print_done(study, st, seconds)


@commands.command("select-study")
def select_study(
    dataset: str = opt.Dataset,
    backbone: str = opt.Backbone,
    fractions: str = typer.Option("0.25,0.5", help="subset sizes as fractions of train, comma-separated"),
    rules: str = typer.Option("entropy-high,entropy-low,random", help="selection rules to compare "
                              "(random, entropy-high, entropy-low, error)"),
    seeds: int | None = opt.Seeds,
    preset: str = opt.Preset,
    param: list[str] = opt.Param,
    data: str | None = opt.Data,
    store: Path | None = opt.Store,
    cache_dir: Path | None = opt.Cache,
    quiet: bool = opt.Quiet,
):
    """Fine-tune on subsets chosen by entropy or at random, at equal sizes, linked by a study_id."""
    from ..studies import selection as sel

    shared = with_data(parse_assignments(param), data)
    specs = sel.plan(dataset, backbone, sel.parse_fractions(fractions), csv_list(rules), seeds, shared, preset)
    study, st, seconds = run_study(sel.STUDY, specs, store, cache_dir, quiet)
    columns = [f"{f:g} ({study.subset_sizes[f]} images)" for f in study.fractions]
    out.print(_levels_table(f"{study.dataset} · {study.backbone} · study {study.study_id} · fine-tuned test accuracy",
                            "rule", columns, study.table()))
    print_done(study, st, seconds)
