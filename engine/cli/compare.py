"""``toptune compare`` and ``report``: top-tuning against fine-tuning, one comparison and all of them."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from ..params import parse_assignments
from ..spec import DEFAULT_BACKBONE, DEFAULT_CLASSIFIER, DEFAULT_DATASET
from ..store import Store
from . import options as opt
from .common import Commands, out, run_study, with_data

commands = Commands()
register = commands.register


@commands.command()
def compare(
    dataset: str = typer.Option(DEFAULT_DATASET, help="dataset plugin"),
    backbone: str = typer.Option(DEFAULT_BACKBONE, help="backbone plugin"),
    classifier: str = typer.Option(DEFAULT_CLASSIFIER, help="top-tuning classifier"),
    seeds: int | None = opt.Seeds,
    preset: str = typer.Option("auto", help="auto (cpu without CUDA) | gpu (common practice) | cpu (128 px, 3 epochs)"),
    param: list[str] = typer.Option([], "--param", "-p", help="key=value for both methods (repeatable)"),
    top_param: list[str] = opt.TopParam,
    fine_param: list[str] = opt.FineParam,
    data: str | None = opt.Data,
    store: Path | None = opt.Store,
    cache_dir: Path | None = opt.Cache,
    quiet: bool = opt.Quiet,
):
    """Top-tuning vs fine-tuning on the same split and seeds: accuracy, Δ, speed-up and verdict."""
    from ..studies import compare as cmp

    shared = with_data(parse_assignments(param), data)
    specs = cmp.plan(dataset, backbone, classifier, seeds, shared, parse_assignments(top_param),
                     parse_assignments(fine_param), preset)
    c, st, _ = run_study(cmp.STUDY, specs, store, cache_dir, quiet)
    table = Table(title=f"{dataset} · {backbone} · comparison {c.comparison_id}", header_style="bold")
    for col in ("method", "accuracy (mean ± std)", "train time s", "runs"):
        table.add_column(col, justify="left" if col == "method" else "right")
    table.add_row(f"top-tuning ({classifier})", c.top.text(), f"{c.top.train_time_s:.1f}", str(c.top.n_runs))
    table.add_row("fine-tuning", c.fine.text(), f"{c.fine.train_time_s:.1f}", str(c.fine.n_runs))
    out.print(table)
    out.print(f"Δaccuracy (top − fine): {c.delta_points:+.2f} points · speed-up: {c.speedup:.1f}× · "
              f"verdict: [bold]{c.verdict}[/]")
    out.print(f"store: {st.path.resolve()}", markup=False, soft_wrap=True)


@commands.command()
def report(store: Path | None = opt.Store):
    """Aggregate every comparison in the store: verdict counts and speed-ups per backbone and overall."""
    from ..studies import compare as cmp

    items = cmp.comparisons(Store(store))
    if not items:
        out.print("no complete comparisons yet: run `toptune compare`")
        return
    table = Table(title="comparisons", header_style="bold")
    for col in ("id", "dataset", "backbone", "classifier", "top-tuning", "fine-tuning", "Δ points",
                "speed-up", "verdict"):
        table.add_column(col, justify="right" if col in ("Δ points", "speed-up") else "left")
    for c in items:
        table.add_row(c.comparison_id, c.dataset, c.backbone, c.classifier, c.top.text(),
                      c.fine.text(), f"{c.delta_points:+.2f}", f"{c.speedup:.1f}×",
                      c.verdict)
    out.print(table)
    agg = Table(title="verdicts and speed-ups", header_style="bold")
    for col in ("backbone", "comparisons", *cmp.VERDICTS, "speed-up min", "median", "max"):
        agg.add_column(col, justify="left" if col == "backbone" else "right")
    for a in cmp.aggregate(items):
        agg.add_row(a.group, str(a.n), *(str(a.counts[v]) for v in cmp.VERDICTS), f"{a.speedup_min:.1f}×",
                    f"{a.speedup_median:.1f}×", f"{a.speedup_max:.1f}×")
    out.print(agg)


