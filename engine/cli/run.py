"""``toptune run``, ``runs``, ``sql`` and ``demo``: one experiment, the runs table, SQL over the store."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.table import Table
from rich.text import Text

from ..errors import ParamError
from ..params import parse_assignments, shown
from ..spec import DEFAULT_BACKBONE, DEFAULT_CLASSIFIER, DEFAULT_DATASET, RunSpec
from ..store import Store
from ..store.artifacts import disk_usage
from . import options as opt
from .common import Commands, cell, csv_list, err, fitted_table, out, plain, progress, with_data, words_table

commands = Commands()
register = commands.register


def _mb(size: int) -> str:
    return f"{size / 2**20:.1f} MB"


# The runs table, most useful first: narrow terminals lose the columns at the end of the list.
RUN_COLUMNS = [("id", "id", False), ("status", "status", False), ("accuracy", "accuracy", True),
               ("train_time_s", "train s", True), ("dataset", "dataset", False), ("method", "method", False),
               ("backbone", "backbone", False), ("name", "name", False), ("tags", "tags", False),
               ("seed", "seed", True), ("n_train", "n_train", True), ("n_test", "n_test", True),
               ("fit_time_s", "fit s", True), ("created_at", "created (UTC)", False)]
FORMATS = ("table", "csv", "json")
STATUS_STYLES = {"finished": "green", "failed": "red", "interrupted": "yellow", "running": "cyan"}


def runs_table(rows: list[dict], title: str | None = None, disk: dict | None = None) -> Table:
    """Recent runs as a table that fits the terminal; ``disk`` (run id -> bytes) adds a column of sizes."""
    columns = [c for c in RUN_COLUMNS if c[0] not in ("name", "tags") or any(r.get(c[0]) for r in rows)]
    if disk is not None:
        columns.insert(2, ("disk", "disk", True))
    cells = []
    for r in rows:
        row = {key: cell(r.get(key)) for key, _, _ in columns}
        row.update({k: "" if r.get(k) is None else f"{r[k]:.2f}" for k in ("train_time_s", "fit_time_s")})
        row["accuracy"] = "" if r.get("accuracy") is None else f"{r['accuracy']:.4f}"
        row["created_at"] = r["created_at"].strftime("%Y-%m-%d %H:%M") if r.get("created_at") else ""
        row["dataset"] = r.get("dataset_label") or r.get("dataset") or ""  # the folder's label, not "imagefolder"
        row["tags"] = ", ".join(r.get("tags") or [])
        row["method"] = " · ".join(str(v) for v in (r.get("method"), r.get("classifier")) if v)  # top-tune · kernel
        if disk is not None:
            row["disk"] = _mb(disk.get(r["id"], 0)) if r["id"] in disk else ""
        cells.append(row)
    return fitted_table(columns, cells, title, styles={"status": lambda s: STATUS_STYLES.get(s, "")},
                        wrap=("name", "tags"))


def print_unreadable(run: dict) -> None:
    """The images a run could not read, by file and reason, as its info lists them (at most 50)."""
    info = run.get("info") or {}
    listed = info.get("skipped_files") or []
    counts = {split: info.get(f"skipped_{split}") or 0 for split in ("train", "test")}
    if not listed and not any(counts.values()):
        return
    total = sum(counts.values())
    more = f" (the first {len(listed)} listed)" if total > len(listed) else ""
    out.print(Text(f"skipped {total} unreadable image(s): {counts['train']} in train, {counts['test']} in test"
                   f"{more}", style="yellow"))
    for item in listed:
        out.print(plain(f"  {item.get('split')}: {item.get('file')}: {item.get('reason')}"), soft_wrap=True)



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
    row = st.get_run(run_id)
    out.print(runs_table([row], title="run finished"))
    print_unreadable(row)
    out.print(f"store: {st.path.resolve()}", markup=False, soft_wrap=True)


@commands.command()
def runs(
    limit: int = typer.Option(20, min=1, help="how many recent runs"),
    status: str | None = typer.Option(None, help="running | finished | failed | interrupted"),
    disk: bool = typer.Option(False, "--disk", help="also show what each run's files (its model, exported "
                                                    "tables) take on disk beside the store, and the total"),
    as_json: bool = typer.Option(False, "--json", help="every column of each run, as JSON"),
    dataset: str | None = typer.Option(None, help="only runs on this dataset: a folder's label (as listed) or a "
                                      "plugin (imagefolder, digits, …)"),
    method: str | None = typer.Option(None, help="only runs of this method (top-tune | fine-tune | …)"),
    backbone: str | None = typer.Option(None, help="only runs with this backbone"),
    classifier: str | None = typer.Option(None, help="only runs with this classifier"),
    tag: list[str] = typer.Option([], "--tag", help="only runs tagged so (repeatable: runs having every tag)"),
    archived: bool = typer.Option(False, "--archived", help="list archived runs (hidden otherwise) instead"),
    store: Path | None = opt.Store,
):
    """List recent runs (newest first; filter by dataset, method, backbone, classifier, status, tags)."""
    st = Store(store)
    st.require()  # a read creates nothing: a wrong --store says so instead of making an empty store
    equals = {k: v for k, v in dict(dataset=dataset, method=method, backbone=backbone,
                                     classifier=classifier).items() if v is not None}
    if dataset is not None and st.count_runs(dataset_label=dataset, archived=None):
        equals["dataset_label"] = equals.pop("dataset")  # a folder's label, rather than a plugin's name
    tags = tuple(t for text in tag for t in csv_list(text))
    rows = st.runs(limit=limit, status=status, archived=archived, tags=tags, **equals)
    if as_json:
        print(json.dumps(rows, default=str, indent=2))
        return
    hidden = 0 if archived else st.count_runs(status=status, archived=True, tags=tags, **equals)
    if not rows:
        out.print(f"no {'archived ' if archived else ''}runs in {st.path}" +
                  (f" ({hidden} archived: --archived lists them)" if hidden else ""), markup=False)
        return
    usage = disk_usage(st.path) if disk else None
    out.print(runs_table(rows, disk=usage))
    total = st.count_runs(status=status, archived=archived, tags=tags, **equals)
    if total > len(rows):
        out.print(f"the newest {len(rows)} of {total} runs; --limit shows more, --json every column",
                  markup=False, style="dim")
    if hidden:
        out.print(f"{hidden} archived run(s) hidden: --archived lists them, toptune restore brings them back",
                  markup=False, style="dim")
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
    timeout: float = typer.Option(30.0, help="seconds before the query is stopped (at most 3600)"),
    max_rows: int = typer.Option(10_000, help="rows returned at most (1 to 1,000,000)"),
):
    """Query the store with read-only SQL (tables: runs, predictions, epochs; view: confusion)."""
    if fmt not in FORMATS:
        raise ParamError(f"--format must be one of {', '.join(FORMATS)}, got {shown(fmt)}")
    result = Store(store).query(query, timeout_s=timeout, max_rows=max_rows)
    if fmt == "json":
        print(json.dumps([dict(zip(result.columns, r)) for r in result.rows], default=str, indent=2))
    elif fmt == "csv":
        import csv

        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(result.columns)
        writer.writerows(result.rows)
    else:
        cells = [[cell(v) for v in r] for r in result.rows]
        numeric = [i for i in range(len(result.columns))
                   if all(isinstance(r[i], int | float) and not isinstance(r[i], bool) for r in result.rows
                          if r[i] is not None)]
        out.print(words_table([str(c) for c in result.columns], cells, right=numeric))
    if result.truncated:
        err.print(f"showing the first {max_rows} rows", style="yellow")


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
        out.print(f"top-tuning {DEFAULT_BACKBONE} on {DEFAULT_DATASET} with {clf}", style="bold")
        run_id, _ = run_spec(RunSpec(classifier=clf), st, cache=cache, progress=bars)
        ids.append(run_id)
    rows = [{"id": r["id"], "classifier": r["classifier"], "accuracy": f"{r['accuracy']:.4f}",
             "train": f"{r['train_time_s']:.1f}", "extract": f"{r['extract_time_s']:.1f}",
             "fit": f"{r['fit_time_s']:.2f}", "n_train": str(r["n_train"]), "n_test": str(r["n_test"])}
            for r in map(st.get_run, ids)]
    out.print(fitted_table([("classifier", "classifier", False), ("accuracy", "accuracy", True),
                            ("train", "train s", True), ("extract", "extract s", True), ("fit", "fit s", True),
                            ("id", "run", False), ("n_train", "n_train", True), ("n_test", "n_test", True)], rows,
                           title="top-tuning on digits (EfficientNet-Lite0, ImageNet-1k)"))
    out.print(f"store: {st.path.resolve()}", markup=False, soft_wrap=True)
    out.print('query it: toptune sql "select method, classifier, accuracy, train_time_s from runs"', soft_wrap=True)


