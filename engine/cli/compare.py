"""``toptune compare`` and ``report``: top-tuning against fine-tuning, one comparison and all of them."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table
from rich.text import Text

from ..params import parse_assignments
from ..spec import DEFAULT_CLASSIFIER
from ..store import Store
from . import options as opt
from .common import Commands, fitted_table, out, plain, print_cards, run_study, with_data
from .run import print_unreadable

commands = Commands()
register = commands.register


@commands.command()
def compare(
    dataset: str = opt.Dataset,
    backbone: str = opt.Backbone,
    classifier: str = typer.Option(DEFAULT_CLASSIFIER, help="top-tuning classifier"),
    seeds: int | None = opt.Seeds,
    preset: str = opt.Preset,
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
    out.print(comparison_table(c))
    print_unreadable(st.get_run(c.run_ids[0]))  # the same split for both methods: the same files skipped
    out.print(Text(f"Δaccuracy (top − fine): {c.delta_points:+.2f} points · speed-up: {c.speedup:.1f}× · verdict: ")
              + Text(str(c.verdict), style="bold"))
    print_cards(cmp.verdict_cards([c]), title="the answer")
    out.print(f"store: {st.path.resolve()}", markup=False, soft_wrap=True)


def comparison_table(c) -> Table:
    """One comparison's two methods, titled with what the verdict holds for (data, backbone, image size, epochs,
    seeds, preset)."""
    rows = [{"method": f"top-tuning ({c.classifier})", "accuracy": c.top.text(), "time": f"{c.top.train_time_s:.1f}",
             "runs": str(c.top.n_runs)},
            {"method": "fine-tuning", "accuracy": c.fine.text(), "time": f"{c.fine.train_time_s:.1f}",
             "runs": str(c.fine.n_runs)}]
    return fitted_table([("method", "method", False), ("accuracy", "accuracy (mean ± std)", True),
                         ("time", "train time s", True), ("runs", "runs", True)], rows,
                        title=plain(f"{c.label} · {c.backbone} · {c.size_text} · {c.settings_text} · comparison "
                                    f"{c.comparison_id}"))


# The comparisons table of `report`, most useful first: narrow terminals lose the columns at the end.
COMPARISON_COLUMNS = [("dataset", "dataset", False), ("verdict", "verdict", False), ("top", "top-tuning", True),
                      ("fine", "fine-tuning", True), ("delta", "Δ points", True), ("speedup", "speed-up", True),
                      ("size", "image", False), ("epochs", "epochs", True), ("seeds", "seeds", True),
                      ("preset", "preset", False), ("backbone", "backbone", False),
                      ("classifier", "classifier", False), ("id", "id", False)]
AGGREGATE_COLUMNS = [("group", "setup", False), ("n", "n", True), ("same", "same", True), ("fine", "fine", True),
                     ("top", "top", True), ("speedup", "speed-up (range)", True)]


def comparison_rows(items) -> list[dict]:
    return [{"dataset": c.label, "verdict": c.verdict, "delta": f"{c.delta_points:+.2f}",
             "speedup": f"{c.speedup:.1f}×", "top": c.top.text(), "fine": c.fine.text(), "size": c.size_text,
             "epochs": "" if c.epochs is None else str(c.epochs), "seeds": "" if c.seeds is None else str(c.seeds),
             "preset": c.preset or "", "backbone": c.backbone, "classifier": c.classifier, "id": c.comparison_id}
            for c in items]


@commands.command()
def report(
    limit: int = typer.Option(30, min=1, help="list the newest N comparisons (the aggregates count them all)"),
    store: Path | None = opt.Store,
):
    """Every comparison in the store: the verdict per dataset and setup first, then the newest comparisons,
    then verdict counts and speed-ups per setup and overall."""
    from ..studies import compare as cmp

    st = Store(store)
    st.require()  # a read creates nothing
    items = cmp.comparisons(st)
    if not items:
        out.print("no complete comparisons yet: run `toptune compare`")
        return
    print_cards(cmp.verdict_cards(items), title="verdicts (the newest comparison of each dataset and setup)")
    out.print()
    shown = items[-limit:]  # oldest first: the newest are last, next to the aggregates
    title = "comparisons" if len(shown) == len(items) else f"the newest {len(shown)} of {len(items)} comparisons"
    out.print(fitted_table(COMPARISON_COLUMNS, comparison_rows(shown), title=title, styles={"verdict": _bold}))
    rows = [{"group": a.group if a.group != "all" else "all settings", "n": str(a.n),
             "same": str(a.counts["same"]), "fine": str(a.counts["fine-tuning better"]),
             "top": str(a.counts["top-tuning better"]),
             "speedup": f"{a.speedup_median:.1f}×" + (f" ({a.speedup_min:.1f}–{a.speedup_max:.1f})"
                                                       if a.speedup_max > a.speedup_min else "")}
            for a in cmp.aggregate(items, by="setup")]
    out.print(fitted_table(AGGREGATE_COLUMNS, rows, wrap=("group",),
                           title="verdicts and speed-ups per setup: n comparisons; same, fine-tuning better, "
                                 "top-tuning better; median speed-up (range)"))


def _bold(_text: str) -> str:
    return "bold"
