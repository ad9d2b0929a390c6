"""The ``toptune`` command line. Every command calls the same engine functions as the dashboard and tests."""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.table import Table

from . import registry
from .errors import ToptuneError
from .params import parse_assignments
from .spec import DEFAULT_BACKBONE, DEFAULT_CLASSIFIER, DEFAULT_DATASET, RunSpec
from .store import Store

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Fine-tune or top-tune? Measure it.")
# Piped output (CI logs, files) gets room for whole tables instead of rich's 80-column default.
out = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 160)

StoreOpt = typer.Option(None, "--store", envvar="TOPTUNE_STORE", help="DuckDB store file [default: ./toptune.duckdb]")


def guarded(fn):
    """Turn toptune errors into one red line and a non-zero exit; Ctrl-C into exit 130."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ToptuneError as exc:
            err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            err.print("[yellow]interrupted[/]")
            raise typer.Exit(130) from None

    return wrapper


def _fmt(value, digits=4):
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def _runs_table(rows: list[dict], title: str | None = None) -> Table:
    table = Table(title=title, header_style="bold")
    cols = {"id": "id", "status": "status", "method": "method", "backbone": "backbone",
            "classifier": "classifier", "dataset": "dataset", "seed": "seed", "accuracy": "accuracy",
            "train_time_s": "train s", "fit_time_s": "fit s", "n_train": "n_train", "n_test": "n_test",
            "created_at": "created (UTC)"}
    numeric = {"seed", "accuracy", "train_time_s", "fit_time_s", "n_train", "n_test"}
    for key, header in cols.items():
        table.add_column(header, justify="right" if key in numeric else "left", no_wrap=True)
    colour = {"finished": "green", "failed": "red", "interrupted": "yellow", "running": "cyan"}
    for r in rows:
        cells = {k: _fmt(r.get(k)) for k in cols}
        cells["status"] = f"[{colour.get(r['status'], 'white')}]{r['status']}[/]"
        for k in ("train_time_s", "fit_time_s"):
            cells[k] = "" if r.get(k) is None else f"{r[k]:.2f}"
        cells["created_at"] = r["created_at"].strftime("%Y-%m-%d %H:%M") if r.get("created_at") else ""
        table.add_row(*cells.values())
    return table


def _progress(quiet: bool):
    from .progress import Progress, TqdmProgress

    return Progress() if quiet else TqdmProgress()


@app.command()
@guarded
def run(
    method: str = typer.Option("top-tune", help="top-tune (fine-tune arrives with the compare issue)"),
    backbone: str = typer.Option(DEFAULT_BACKBONE, help="backbone plugin, e.g. efficientnet_lite0 or timm:resnet50"),
    classifier: str = typer.Option(DEFAULT_CLASSIFIER, help="classifier plugin (kernel, ridge, ...)"),
    dataset: str = typer.Option(DEFAULT_DATASET, help="dataset plugin (digits, imagefolder, cifar10, ...)"),
    seed: int = typer.Option(0, min=0, help="random seed"),
    param: List[str] = typer.Option([], "--param", "-p", help="key=value or classifier.key=value (repeatable)"),
    weights: Optional[str] = typer.Option(None, help="backbone weights file (state dict or .safetensors)"),
    data: Optional[str] = typer.Option(None, help="dataset path (shortcut for --param dataset.path=...)"),
    store: Optional[Path] = StoreOpt,
    cache_dir: Optional[Path] = typer.Option(None, envvar="TOPTUNE_CACHE_DIR", help="feature cache folder"),
    as_json: bool = typer.Option(False, "--json", help="print the result as JSON"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bars"),
):
    """Run one experiment and record it in the store."""
    from .features import FeatureCache
    from .runner import run as run_spec

    params = parse_assignments(param)
    if weights:
        params["backbone.weights"] = weights
    if data:
        params["dataset.path"] = data
    spec = RunSpec(method=method, backbone=backbone, dataset=dataset, classifier=classifier,
                   params=params, seed=seed)
    st = Store(store)
    run_id, result = run_spec(spec, st, cache=FeatureCache(cache_dir), progress=_progress(quiet or as_json))
    if as_json:
        print(json.dumps({"id": run_id, **result.record()}, default=str, indent=2))
        return
    out.print(_runs_table([st.get_run(run_id)], title="run finished"))
    out.print(f"store: {st.path.resolve()}")


@app.command()
@guarded
def runs(
    limit: int = typer.Option(20, min=1, help="how many recent runs"),
    status: Optional[str] = typer.Option(None, help="running | finished | failed | interrupted"),
    store: Optional[Path] = StoreOpt,
):
    """List recent runs."""
    st = Store(store)
    rows = st.runs(limit=limit, status=status)
    if not rows:
        out.print(f"no runs in {st.path}")
        return
    out.print(_runs_table(rows))
    failed = [r for r in rows if r["status"] in ("failed", "interrupted") and r.get("error")]
    for r in failed[:5]:
        out.print(f"[dim]{r['id']}: {r['error']}[/]", highlight=False)


@app.command()
@guarded
def sql(
    query: str = typer.Argument(..., help="one read-only query, e.g. \"SELECT classifier, accuracy FROM runs\""),
    store: Optional[Path] = StoreOpt,
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

        writer = csv.writer(sys.stdout)
        writer.writerow(result.columns)
        writer.writerows(result.rows)
    else:
        table = Table(header_style="bold")
        for c in result.columns:
            table.add_column(c)
        for r in result.rows:
            table.add_row(*[_fmt(v) for v in r])
        out.print(table)
    if result.truncated:
        err.print(f"[yellow]showing the first {max_rows} rows[/]")


@app.command()
@guarded
def plugins(kind: Optional[str] = typer.Argument(None, help="backbone | classifier | dataset")):
    """List installed plugins with their distribution, version and status."""
    statuses = registry.check(kind)
    table = Table(header_style="bold")
    for c in ("kind", "name", "distribution", "version", "status"):
        table.add_column(c, overflow="fold")
    for s in statuses:
        status = "[green]ok[/]" if s.ok else "[red]error (below)[/]"
        table.add_row(s.info.kind, s.info.name, s.info.distribution, s.info.version, status)
    out.print(table)
    broken = [s for s in statuses if not s.ok]
    for s in broken:
        out.print(f"[red]{s.info.kind} {s.info.name}[/] ({s.info.distribution} {s.info.version}): {s.error}",
                  highlight=False, soft_wrap=True)
    if broken:
        err.print(f"[yellow]{len(broken)} plugin(s) failed to load; the others work normally[/]")


@app.command()
@guarded
def datasets(
    name: Optional[str] = typer.Argument(None, help="a dataset to load and describe"),
    param: List[str] = typer.Option([], "--param", "-p", help="dataset parameter key=value (repeatable)"),
    data: Optional[str] = typer.Option(None, help="dataset path (shortcut for --param path=...)"),
):
    """List datasets, or load one and show its metadata (#train, #test, #classes, mean image size)."""
    from .runner import describe_dataset

    if name is None:
        table = Table(header_style="bold")
        for c in ("name", "distribution", "description"):
            table.add_column(c)
        for info in registry.discover("dataset"):
            try:
                description = registry.load("dataset", info.name).description
            except ToptuneError as exc:
                description = f"[red]{exc}[/]"
            table.add_row(info.name, info.distribution, description)
        out.print(table)
        return
    params = parse_assignments(param)
    if data:
        params["path"] = data
    meta = describe_dataset(name, params)
    size = meta.get("mean_image_size")
    out.print(f"[bold]{name}[/]: {meta['n_train']} train, {meta['n_test']} test, {meta['n_classes']} classes, "
              f"mean image size {'x'.join(f'{v:.0f}' for v in size) if size else 'unknown'} (h x w)")
    skip = {"classes", "n_train", "n_test", "n_classes", "mean_image_size"}
    for key, value in meta.items():
        if key not in skip:
            out.print(f"  {key}: {value}", highlight=False)
    classes = meta["classes"]
    out.print(f"  classes: {', '.join(classes[:20])}{' ...' if len(classes) > 20 else ''}", highlight=False)


@app.command()
@guarded
def demo(
    store: Optional[Path] = StoreOpt,
    cache_dir: Optional[Path] = typer.Option(None, envvar="TOPTUNE_CACHE_DIR", help="feature cache folder"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bars"),
):
    """Top-tune EfficientNet-Lite0 (ImageNet weights) on scikit-learn's digits with kernel and ridge."""
    from .features import FeatureCache
    from .runner import run as run_spec

    st, cache, progress = Store(store), FeatureCache(cache_dir), _progress(quiet)
    ids = []
    for clf in ("kernel", "ridge"):
        out.print(f"[bold]top-tuning {DEFAULT_BACKBONE} on {DEFAULT_DATASET} with {clf}[/]")
        run_id, _ = run_spec(RunSpec(classifier=clf), st, cache=cache, progress=progress)
        ids.append(run_id)
    rows = [st.get_run(i) for i in ids]
    table = Table(title="top-tuning on digits (EfficientNet-Lite0, ImageNet-1k)", header_style="bold")
    for c in ("run", "classifier", "accuracy", "train s", "extract s", "fit s", "n_train", "n_test"):
        table.add_column(c, justify="left" if c in ("run", "classifier") else "right")
    for r in rows:
        table.add_row(r["id"], r["classifier"], f"{r['accuracy']:.4f}", f"{r['train_time_s']:.1f}",
                      f"{r['extract_time_s']:.1f}", f"{r['fit_time_s']:.2f}", str(r["n_train"]), str(r["n_test"]))
    out.print(table)
    out.print(f"store: {st.path.resolve()}")
    out.print('query it: toptune sql "select method, classifier, accuracy, train_time_s from runs"', soft_wrap=True)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
