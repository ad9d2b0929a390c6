"""The ``toptune`` command line. Every command calls the same engine functions as the dashboard and tests."""

from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path
from typing import List, Optional

import click
import typer
from rich.console import Console
from rich.table import Table
from rich.markup import escape

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
        except (click.exceptions.Exit, click.exceptions.Abort, click.exceptions.ClickException, SystemExit):
            raise
        except Exception as exc:  # a bug, or a plugin's own failure: one line, the traceback on request
            if os.environ.get("TOPTUNE_DEBUG"):
                raise
            err.print(f"[bold red]error:[/] {type(exc).__name__}: {exc} (TOPTUNE_DEBUG=1 shows the traceback)",
                      highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None

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
    method: str = typer.Option("top-tune", help="top-tune (frozen features + classifier), fine-tune (backbone + linear head, end to end) or cluster (VAE + k-means, no labels; see toptune cluster)"),
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


plugins_app = typer.Typer(help="List installed plugins: all, or one kind (toptune plugins backbone | classifier | "
                           "dataset); smoke-test them with toptune plugins check NAME.")
app.add_typer(plugins_app, name="plugins")


@plugins_app.callback(invoke_without_command=True)
@guarded
def plugins(ctx: typer.Context,
            kind: Optional[str] = typer.Option(None, "--kind", help="backbone | classifier | dataset")):
    """List installed plugins with their distribution, version and status."""
    if ctx.invoked_subcommand is None:
        _list_plugins(kind)


def _kind_lister(kind: str):
    # `toptune plugins backbone` predates the check subcommand; a click group cannot also take a
    # positional kind, so each kind is a hidden subcommand that lists.
    return plugins_app.command(kind, hidden=True, help=f"List {kind} plugins.")(guarded(lambda: _list_plugins(kind)))


for _kind in registry.GROUPS:
    _kind_lister(_kind)


@plugins_app.command("check")
@guarded
def plugins_check(
    names: Optional[List[str]] = typer.Argument(None, help="plugin names, e.g. lenet5 timm:resnet50 (default: all)"),
    kind: Optional[str] = typer.Option(None, "--kind", help="backbone | classifier | dataset"),
    param: List[str] = typer.Option([], "--param", "-p", help="key=value for the one plugin named (repeatable)"),
    as_json: bool = typer.Option(False, "--json", help="print the results as JSON"),
):
    """Load and smoke-test plugins on tiny inputs; exit status 1 when any fails."""
    from .plugin_check import check_plugins

    results = check_plugins(names, kind, parse_assignments(param))
    if as_json:
        print(json.dumps([r.to_dict() for r in results], default=str, indent=2))
    else:
        _print_checks(results)
    if any(r.failed for r in results):
        raise typer.Exit(1)


def _print_checks(results) -> None:
    table = Table(header_style="bold")
    for c in ("kind", "name", "distribution", "version", "result", "seconds", "notes"):
        table.add_column(c, overflow="fold")
    colour = {"pass": "green", "fail": "red", "skip": "yellow"}
    for r in results:
        notes = "see below" if r.failed else r.reason or ", ".join(f"{k}={v}" for k, v in r.details.items())
        table.add_row(r.kind, r.name, r.distribution, r.version, f"[{colour[r.status]}]{r.status}[/]",
                      f"{r.seconds:.2f}", notes)
    out.print(table, highlight=False)
    for r in results:
        if r.failed:
            out.print(f"[red]FAIL {r.kind} {r.name}[/] ({r.distribution} {r.version}): {r.reason}",
                      highlight=False, soft_wrap=True)
    counts = {s: sum(r.status == s for r in results) for s in ("pass", "fail", "skip")}
    out.print(f"{counts['pass']} passed, {counts['fail']} failed, {counts['skip']} skipped")


def _list_plugins(kind: Optional[str]) -> None:
    statuses = registry.check(kind)
    table = Table(header_style="bold")
    for c in ("kind", "name", "distribution", "version", "status"):
        table.add_column(c, overflow="fold")
    for s in statuses:
        status = {"ok": "[green]ok[/]", "unavailable": f"[yellow]{escape(s.reason)}[/]",
                  "error": f"[red]error: {escape(s.error or '')}[/]"}[s.status]
        table.add_row(s.info.kind, s.info.name, s.info.distribution, s.info.version, status)
    out.print(table)
    broken = [s for s in statuses if s.status == "error"]
    for s in broken:  # again in full, unfolded, so the message can be read and copied whole
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
    from .data import describe_dataset

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


def _pm(acc: float, std: float) -> str:
    return f"{acc:.4f} ± {std:.4f}"


@app.command()
@guarded
def compare(
    dataset: str = typer.Option(DEFAULT_DATASET, help="dataset plugin"),
    backbone: str = typer.Option(DEFAULT_BACKBONE, help="backbone plugin"),
    classifier: str = typer.Option(DEFAULT_CLASSIFIER, help="top-tuning classifier"),
    seeds: Optional[int] = typer.Option(None, min=1, help="seeds 0..N-1 [default: 3 (gpu preset), 1 (cpu)]"),
    preset: str = typer.Option("auto", help="auto (cpu without CUDA) | gpu (common practice) | cpu (128 px, 3 epochs)"),
    param: List[str] = typer.Option([], "--param", "-p", help="key=value for both methods (repeatable)"),
    top_param: List[str] = typer.Option([], "--top-param", help="key=value for top-tuning only"),
    fine_param: List[str] = typer.Option([], "--fine-param", help="key=value for fine-tuning only"),
    data: Optional[str] = typer.Option(None, help="dataset path (shortcut for --param dataset.path=...)"),
    store: Optional[Path] = StoreOpt,
    cache_dir: Optional[Path] = typer.Option(None, envvar="TOPTUNE_CACHE_DIR", help="feature cache folder"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bars"),
):
    """Top-tuning vs fine-tuning on the same split and seeds: accuracy, Δ, speed-up and verdict."""
    from . import compare as cmp
    from .features import FeatureCache

    shared = parse_assignments(param)
    if data:
        shared["dataset.path"] = data
    specs = cmp.plan(dataset, backbone, classifier, seeds, shared, parse_assignments(top_param),
                     parse_assignments(fine_param), preset)
    st = Store(store)
    c = cmp.compare(specs, st, cache=FeatureCache(cache_dir), progress=_progress(quiet))
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


@app.command()
@guarded
def report(store: Optional[Path] = StoreOpt):
    """Aggregate every comparison in the store: verdict counts and speed-ups per backbone and overall."""
    from . import compare as cmp

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


@app.command()
@guarded
def dashboard(
    store: Optional[Path] = StoreOpt,
    port: int = typer.Option(8501, min=1, max=65535, help="port to serve on"),
    address: str = typer.Option("localhost", help="address to listen on (0.0.0.0: every interface)"),
):
    """Open the web dashboard: runs, comparisons, launching runs, SQL, plugins."""
    from .dashboard.server import serve

    path = Store(store).path  # constructing a Store opens nothing
    out.print(f"dashboard on http://{address}:{port} · store {path.resolve()} · Ctrl-C stops it")
    sys.stdout.flush()
    serve(path, port, address)


from . import cli_cluster  # noqa: E402,F401  registers `toptune cluster` on app (needs the names above)
from . import cli_sweep  # noqa: E402,F401  registers `toptune sweep`
from . import cli_research  # noqa: E402,F401  registers `toptune backbones`, `robustness`, `select-study`


def main() -> None:
    app()


if __name__ == "__main__":
    main()
