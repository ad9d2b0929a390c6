"""``toptune run``, ``runs``, ``sql`` and ``demo``: one experiment, the runs table, SQL over the store."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.table import Table

from ..params import parse_assignments
from ..spec import DEFAULT_BACKBONE, DEFAULT_CLASSIFIER, DEFAULT_DATASET, RunSpec
from ..store import Store
from ..store.artifacts import disk_usage
from . import options as opt
from .common import Commands, cell, err, fitted_table, out, plain, progress, with_data

commands = Commands()
register = commands.register


def _mb(size: int) -> str:
    return f"{size / 2**20:.1f} MB"


# The runs table, most useful first: narrow terminals lose the columns at the end of the list.
RUN_COLUMNS = [("id", "id", False), ("status", "status", False), ("accuracy", "accuracy", True),
               ("train_time_s", "train s", True), ("method", "method", False), ("classifier", "classifier", False),
               ("dataset", "dataset", False), ("backbone", "backbone", False), ("seed", "seed", True),
               ("n_train", "n_train", True), ("n_test", "n_test", True), ("fit_time_s", "fit s", True),
               ("created_at", "created (UTC)", False)]
STATUS_STYLES = {"finished": "green", "failed": "red", "interrupted": "yellow", "running": "cyan"}


def runs_table(rows: list[dict], title: str | None = None, disk: dict | None = None) -> Table:
    """Recent runs as a table that fits the terminal; ``disk`` (run id -> bytes) adds a column of sizes."""
    columns = list(RUN_COLUMNS)
    if disk is not None:
        columns.insert(2, ("disk", "disk", True))
    cells = []
    for r in rows:
        row = {key: cell(r.get(key)) for key, _, _ in columns}
        row.update({k: "" if r.get(k) is None else f"{r[k]:.2f}" for k in ("train_time_s", "fit_time_s")})
        row["accuracy"] = "" if r.get("accuracy") is None else f"{r['accuracy']:.4f}"
        row["created_at"] = r["created_at"].strftime("%Y-%m-%d %H:%M") if r.get("created_at") else ""
        if disk is not None:
            row["disk"] = _mb(disk.get(r["id"], 0)) if r["id"] in disk else ""
        cells.append(row)
    return fitted_table(columns, cells, title, styles={"status": lambda s: STATUS_STYLES.get(s, "")})



@commands.command()
def run(
    method: str = typer.Option("top-tune", help="top-tune (frozen features + classifier), fine-tune (backbone + "
                               "linear head, end to end) or cluster (VAE + k-means, no labels; see toptune cluster)"),
    backbone: str = typer.Option(DEFAULT_BACKBONE, help="backbone plugin, e.g. efficientnet_lite0 or timm:resnet50"),
    classifier: str = typer.Option(DEFAULT_CLASSIFIER, help="classifier plugin (kernel, ridge, ...)"),
    dataset: str = typer.Option(DEFAULT_DATASET, help="dataset plugin (digits, imagefolder, cifar10, ...)"),
    seed: int = typer.Option(0, min=0, help="random seed"),
    param: list[str] = typer.Option([], "--param", "-p", help="key=value or classifier.key=value (repeatable)"),
    weights: str | None = typer.Option(None, help="backbone weights file (state dict or .safetensors)"),
    data: str | None = opt.Data,
    store: Path | None = opt.Store,
    cache_dir: Path | None = opt.Cache,
    as_json: bool = typer.Option(False, "--json", help="print the result as JSON"),
    quiet: bool = opt.Quiet,
):
    """Run one experiment and record it in the store."""
    from ..features.cache import FeatureCache
    from ..runner import run as run_spec

    params = with_data(parse_assignments(param), data)
    if weights:
        params["backbone.weights"] = weights
    spec = RunSpec(method=method, backbone=backbone, dataset=dataset, classifier=classifier,
                   params=params, seed=seed)
    st = Store(store)
    run_id, result = run_spec(spec, st, cache=FeatureCache(cache_dir), progress=progress(quiet or as_json))
    if as_json:
        print(json.dumps({"id": run_id, **result.record()}, default=str, indent=2))
        return
    out.print(runs_table([st.get_run(run_id)], title="run finished"))
    out.print(f"store: {st.path.resolve()}", markup=False, soft_wrap=True)


@commands.command()
def runs(
    limit: int = typer.Option(20, min=1, help="how many recent runs"),
    status: str | None = typer.Option(None, help="running | finished | failed | interrupted"),
    disk: bool = typer.Option(False, "--disk", help="also show what each run's files (its model, exported "
                                                    "tables) take on disk beside the store, and the total"),
    as_json: bool = typer.Option(False, "--json", help="every column of each run, as JSON"),
    store: Path | None = opt.Store,
):
    """List recent runs."""
    st = Store(store)
    rows = st.runs(limit=limit, status=status)
    if as_json:
        print(json.dumps(rows, default=str, indent=2))
        return
    if not rows:
        out.print(f"no runs in {st.path}")
        return
    usage = disk_usage(st.path) if disk else None
    out.print(runs_table(rows, disk=usage))
    if usage is not None:
        out.print(f"beside the store: {_mb(sum(usage.values()))} in {len(usage)} run folder(s) under "
                  f"{st.path}.artifacts/ (delete a run's folder to free its space)", markup=False, soft_wrap=True)
    failed = [r for r in rows if r["status"] in ("failed", "interrupted") and r.get("error")]
    for r in failed[:5]:
        out.print(plain(f"{r['id']}: {r['error']}"), style="dim", highlight=False)


@commands.command()
def sql(
    query: str = typer.Argument(..., help="one read-only query, e.g. \"SELECT classifier, accuracy FROM runs\""),
    store: Path | None = opt.Store,
    fmt: str = typer.Option("table", "--format", help="table | csv | json"),
    timeout: float = typer.Option(30.0, help="seconds before the query is interrupted"),
    max_rows: int = typer.Option(10_000, help="rows returned at most"),
):
    """Query the store with read-only SQL (tables: runs, predictions; view: confusion)."""
    result = Store(store).query(query, timeout_s=timeout, max_rows=max_rows)
    if fmt == "json":
        print(json.dumps([dict(zip(result.columns, r)) for r in result.rows], default=str, indent=2))
    elif fmt == "csv":
        import csv

        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(result.columns)
        writer.writerows(result.rows)
    else:
        table = Table(header_style="bold")
        for c in result.columns:
            table.add_column(plain(c))
        for r in result.rows:
            table.add_row(*[plain(cell(v)) for v in r])
        out.print(table)
    if result.truncated:
        err.print(f"[yellow]showing the first {max_rows} rows[/]")


@commands.command()
def demo(
    store: Path | None = opt.Store,
    cache_dir: Path | None = opt.Cache,
    quiet: bool = opt.Quiet,
):
    """Top-tune EfficientNet-Lite0 (ImageNet weights) on scikit-learn's digits with kernel and ridge."""
    from ..features.cache import FeatureCache
    from ..runner import run as run_spec

    st, cache, bars = Store(store), FeatureCache(cache_dir), progress(quiet)
    ids = []
    for clf in ("kernel", "ridge"):
        out.print(f"[bold]top-tuning {DEFAULT_BACKBONE} on {DEFAULT_DATASET} with {clf}[/]")
        run_id, _ = run_spec(RunSpec(classifier=clf), st, cache=cache, progress=bars)
        ids.append(run_id)
    rows = [st.get_run(i) for i in ids]
    table = Table(title="top-tuning on digits (EfficientNet-Lite0, ImageNet-1k)", header_style="bold")
    for c in ("run", "classifier", "accuracy", "train s", "extract s", "fit s", "n_train", "n_test"):
        table.add_column(c, justify="left" if c in ("run", "classifier") else "right")
    for r in rows:
        table.add_row(r["id"], r["classifier"], f"{r['accuracy']:.4f}", f"{r['train_time_s']:.1f}",
                      f"{r['extract_time_s']:.1f}", f"{r['fit_time_s']:.2f}", str(r["n_train"]), str(r["n_test"]))
    out.print(table)
    out.print(f"store: {st.path.resolve()}", markup=False, soft_wrap=True)
    out.print('query it: toptune sql "select method, classifier, accuracy, train_time_s from runs"', soft_wrap=True)


