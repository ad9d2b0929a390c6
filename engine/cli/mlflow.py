"""``toptune mlflow-export``: a store's runs into an MLflow tracking store, once each."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from . import options as opt
from .common import Commands, out, plain

commands = Commands()
register = commands.register


@commands.command("mlflow-export")
def mlflow_export(
    tracking_uri: str | None = typer.Option(
        None, "--tracking-uri", envvar="MLFLOW_TRACKING_URI",
        help="MLflow tracking store: sqlite:///mlflow.db, a folder (file:///path/mlruns) or a server "
             "(http://host:5000) [default: MLflow's own, $MLFLOW_TRACKING_URI]"),
    experiment: str = typer.Option("toptune", "--experiment", help="MLflow experiment (created when missing)"),
    run: list[str] = typer.Option([], "--run", help="only this run id (repeatable)"),
    status: str | None = typer.Option(None, help="only runs with this status: finished | failed | interrupted"),
    method: str | None = typer.Option(None, help="only this method, e.g. top-tune"),
    dataset: str | None = typer.Option(None, help="only this dataset, e.g. digits or hf"),
    backbone: str | None = typer.Option(None, help="only this backbone"),
    classifier: str | None = typer.Option(None, help="only this classifier"),
    study: str | None = typer.Option(None, help="only the runs of this study id"),
    sweep: str | None = typer.Option(None, help="only the runs of this sweep id"),
    limit: int | None = typer.Option(None, min=1, help="only the N most recent runs"),
    store: Path | None = opt.Store,
    as_json: bool = typer.Option(False, "--json", help="print the summary as JSON"),
):
    """Log runs (params, metrics, tags, info, the saved model) into MLflow; exporting again adds only new runs."""
    from ..store import Store
    from ..store.mlflow_export import export_runs

    summary = export_runs(Store(store), tracking_uri, experiment, run_ids=run, limit=limit, status=status,
                          method=method, dataset=dataset, backbone=backbone, classifier=classifier,
                          study_id=study, sweep_id=sweep)
    if as_json:
        print(json.dumps(summary.to_dict(), indent=2))
        return
    lines = [f"exported {len(summary.exported)} run(s) ({summary.with_model} with a model) to MLflow experiment "
             f"'{summary.experiment}' (id {summary.experiment_id}) at {summary.tracking_uri}"]
    if summary.skipped:
        lines.append(f"{len(summary.skipped)} run(s) were already there and left as they are")
    if summary.running:
        lines.append(f"{len(summary.running)} run(s) still running: export again once they end")
    for line in lines:
        out.print(plain(line), highlight=False, soft_wrap=True)
