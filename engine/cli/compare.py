"""``toptune compare`` and ``report``: top-tuning against fine-tuning, one comparison and all of them."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from ..params import parse_assignments
from ..spec import DEFAULT_BACKBONE, DEFAULT_CLASSIFIER, DEFAULT_DATASET
from ..store import Store
from .common import CacheOpt, Commands, DataOpt, QuietOpt, StoreOpt, out, progress, with_data

commands = Commands()
register = commands.register


def _pm(acc: float, std: float) -> str:
    return f"{acc:.4f} ± {std:.4f}"


@commands.command()
def compare(
    dataset: str = typer.Option(DEFAULT_DATASET, help="dataset plugin"),
    backbone: str = typer.Option(DEFAULT_BACKBONE, help="backbone plugin"),
    classifier: str = typer.Option(DEFAULT_CLASSIFIER, help="top-tuning classifier"),
    seeds: int | None = typer.Option(None, min=1, help="seeds 0..N-1 [default: 3 (gpu preset), 1 (cpu)]"),
    preset: str = typer.Option("auto", help="auto (cpu without CUDA) | gpu (common practice) | cpu (128 px, 3 epochs)"),
    param: list[str] = typer.Option([], "--param", "-p", help="key=value for both methods (repeatable)"),
    top_param: list[str] = typer.Option([], "--top-param", help="key=value for top-tuning only"),
    fine_param: list[str] = typer.Option([], "--fine-param", help="key=value for fine-tuning only"),
    data: str | None = DataOpt,
    store: Path | None = StoreOpt,
    cache_dir: Path | None = CacheOpt,
    quiet: bool = QuietOpt,
):
    """Top-tuning vs fine-tuning on the same split and seeds: accuracy, Δ, speed-up and verdict."""
    from ..features.cache import FeatureCache
    from ..studies import compare as cmp

    shared = with_data(parse_assignments(param), data)
    specs = cmp.plan(dataset, backbone, classifier, seeds, shared, parse_assignments(top_param),
                     parse_assignments(fine_param), preset)
    st = Store(store)
    c = cmp.compare(specs, st, cache=FeatureCache(cache_dir), progress=progress(quiet))
    table = Table(title=f"{dataset} · {backbone} · comparison {c.comparison_id}", header_style="bold")
    for col in ("method", "accuracy (mean ± std)", "train time s", "runs"):
        table.add_column(col, justify="left" if col == "method" else "right")
    table.add_row(f"top-tuning ({classifier})", _pm(c.top.accuracy, c.top.accuracy_std),
                  f"{c.top.train_time_s:.1f}", str(c.top.n_runs))
    table.add_row("fine-tuning", _pm(c.fine.accuracy, c.fine.accuracy_std), f"{c.fine.train_time_s:.1f}",
                  str(c.fine.n_runs))
    out.print(table)
    out.print(f"Δaccuracy (top − fine): {c.delta_points:+.2f} points · speed-up: {c.speedup:.1f}× · "
              f"verdict: [bold]{c.verdict}[/]")
    out.print(f"store: {st.path.resolve()}")


@commands.command()
def report(store: Path | None = StoreOpt):
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
        table.add_row(c.comparison_id, c.dataset, c.backbone, c.classifier, _pm(c.top.accuracy, c.top.accuracy_std),
                      _pm(c.fine.accuracy, c.fine.accuracy_std), f"{c.delta_points:+.2f}", f"{c.speedup:.1f}×",
                      c.verdict)
    out.print(table)
    agg = Table(title="verdicts and speed-ups", header_style="bold")
    for col in ("backbone", "comparisons", *cmp.VERDICTS, "speed-up min", "median", "max"):
        agg.add_column(col, justify="left" if col == "backbone" else "right")
    for a in cmp.aggregate(items):
        agg.add_row(a.group, str(a.n), *(str(a.counts[v]) for v in cmp.VERDICTS), f"{a.speedup_min:.1f}×",
                    f"{a.speedup_median:.1f}×", f"{a.speedup_max:.1f}×")
    out.print(agg)


