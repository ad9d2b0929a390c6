"""A store's runs in an MLflow tracking store: what ``toptune mlflow-export`` does.

Each finished, failed or interrupted toptune run becomes one MLflow run in one experiment: its parameters
flattened (``classifier.M``, ``run.batch_size``, ``seed``), its figures as metrics (accuracy, times, memory,
energy, a method's own metrics, fine-tuning curves by epoch), its names as tags (method, backbone, dataset,
…), its ``info`` and ``spec`` as JSON artifacts, and its saved model folder as the ``model`` artifact. The
tag ``toptune.run_id`` keys the export: a run already exported is left alone, so exporting again adds
only new runs. A run whose export was cut short (tag ``toptune.export`` still ``incomplete``) is replaced.
Runs still running are not exported yet.

MLflow is optional (``pip install 'toptune[mlflow]'``) and imported only here.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from ..errors import ToptuneError
from .artifacts import model_folder
from .store import Store

RUN_ID_TAG = "toptune.run_id"
EXPORT_TAG = "toptune.export"  # "incomplete" until everything is logged, then "complete"
DEFAULT_EXPERIMENT = "toptune"
INSTALL = "pip install 'toptune[mlflow]' (or: pip install mlflow)"
METRIC_COLUMNS = ("accuracy", "train_time_s", "extract_time_s", "fit_time_s", "predict_time_s", "peak_memory_mb",
                  "trained_params", "n_train", "n_test", "n_classes", "feature_dim", "energy_kwh", "co2_g",
                  "model_bytes")
TAG_COLUMNS = ("method", "backbone", "classifier", "dataset", "pretrain_source", "device", "host", "status",
               "toptune_version", "comparison_id", "study_id", "sweep_id", "cell_key", "node_host", "energy_source")
EPOCH_METRICS = ("train_loss", "train_accuracy", "val_accuracy", "lr", "time_s")
STATUS = {"finished": "FINISHED", "failed": "FAILED", "interrupted": "KILLED"}
FILTERS = ("status", "method", "dataset", "backbone", "classifier", "study_id", "sweep_id", "comparison_id")
FILE_STORE_VARIABLE = "MLFLOW_ALLOW_FILE_STORE"  # MLflow 3 refuses file stores without it
BATCH = 100  # MLflow takes at most 100 params or tags, 1000 metrics, per batch


class ExportError(ToptuneError):
    """MLflow is missing, or the tracking store refused the export."""


@dataclass
class ExportSummary:
    tracking_uri: str
    experiment: str
    experiment_id: str
    exported: list[str] = field(default_factory=list)  # toptune run ids newly logged
    skipped: list[str] = field(default_factory=list)  # already in the experiment
    running: list[str] = field(default_factory=list)  # not finished yet, left for a later export
    with_model: int = 0
    mlflow_ids: dict = field(default_factory=dict)  # toptune run id -> MLflow run id, every run matched

    def to_dict(self) -> dict:
        return {"tracking_uri": self.tracking_uri, "experiment": self.experiment,
                "experiment_id": self.experiment_id, "exported": self.exported, "skipped": self.skipped,
                "running": self.running, "with_model": self.with_model, "mlflow_ids": self.mlflow_ids}


def _mlflow():
    try:
        import mlflow  # noqa: F401  (the package must import as a whole, not just its client)
        from mlflow.tracking import MlflowClient
    except ModuleNotFoundError as exc:
        raise ExportError(f"MLflow is not installed ({exc.name} missing): {INSTALL}") from None
    return MlflowClient


def is_file_store(uri: str) -> bool:
    """A tracking URI that is a folder (file:, or a bare path), not a database or a server."""
    scheme = urlparse(uri).scheme
    return scheme in ("", "file") or (len(scheme) == 1 and os.name == "nt")


def sqlite_folder(uri: str) -> Path | None:
    """The folder of a local sqlite tracking database, where its artifacts go too."""
    if not uri.startswith("sqlite:///") or uri.endswith(":memory:"):
        return None
    return Path(uri[len("sqlite:///"):]).expanduser().resolve().parent


@contextmanager
def _quiet_mlflow() -> Iterator[None]:
    """MLflow's and alembic's INFO lines (database creation, migrations) kept out of toptune's output."""
    loggers = [logging.getLogger(name) for name in ("mlflow", "alembic")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def flatten(params: dict, prefix: str = "") -> dict[str, str]:
    """Nested parameters as dotted keys with text values (MLflow params are strings)."""
    out = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value if isinstance(value, str) else json.dumps(value, default=str)
    return out


def _key(name: str) -> str:
    """A key MLflow accepts: letters, digits, and _ - . / and space."""
    return re.sub(r"[^\w\-./ ]", "_", str(name))


def _ms(moment: Any) -> int | None:
    if moment is None:
        return None
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # the store keeps UTC without a zone
    return int(moment.timestamp() * 1000)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    return None


def run_metrics(run: dict) -> dict[str, float]:
    """The figures of a run: result columns and the method's own metrics (e.g. purity), finite numbers only."""
    out = {}
    for column in METRIC_COLUMNS:
        number = _number(run.get(column))
        if number is not None:
            out[column] = number
    for name, value in (run.get("metrics") or {}).items():
        number = _number(value)
        if number is not None:
            out[_key(name)] = number
    return out


def run_params(run: dict, limit: int) -> dict[str, str]:
    """Every parameter that ran, flattened (``classifier.M``), plus the seed; values cut to MLflow's limit."""
    params = flatten(run.get("params") or {})
    params["seed"] = str(run.get("seed"))
    return {_key(k): (v if len(v) <= limit else v[: limit - 1] + "…") for k, v in params.items()}


def run_tags(run: dict, store_path: Path) -> dict[str, str]:
    tags = {f"toptune.{column}": str(run[column]) for column in TAG_COLUMNS if run.get(column) not in (None, "")}
    tags.update({RUN_ID_TAG: run["id"], "toptune.store": str(store_path), EXPORT_TAG: "incomplete"})
    if run.get("error"):
        tags["toptune.error"] = str(run["error"])[:5000]
    return tags


def run_name(run: dict) -> str:
    """E.g. 'top-tune kernel efficientnet_lite0 digits seed 0'."""
    parts = (run["method"], run.get("classifier"), run.get("backbone"), run["dataset"], f"seed {run.get('seed')}")
    return " ".join(str(p) for p in parts if p)


class Exporter:
    """One tracking store and experiment; ``export`` logs runs into it."""

    def __init__(self, tracking_uri: str | None = None, experiment: str = DEFAULT_EXPERIMENT):
        client_class = _mlflow()
        import mlflow
        from mlflow.utils import validation

        self.uri = tracking_uri or mlflow.get_tracking_uri()
        if is_file_store(self.uri):
            os.environ.setdefault(FILE_STORE_VARIABLE, "true")  # the user asked for a folder: let MLflow use it
        self.param_limit = getattr(validation, "MAX_PARAM_VAL_LENGTH", 500)
        self.experiment = experiment
        try:
            with _quiet_mlflow():
                self.client = client_class(tracking_uri=self.uri)
                self.experiment_id = self._experiment(experiment)
        except ToptuneError:
            raise
        except Exception as exc:  # MLflow's own errors: unreachable server, refused file store, bad URI
            raise ExportError(f"MLflow tracking store '{self.uri}' cannot be used: {_one_line(exc)}") from exc

    def _experiment(self, name: str) -> str:
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            if found.lifecycle_stage == "deleted":
                raise ExportError(f"MLflow experiment '{name}' in '{self.uri}' is deleted; restore it or choose "
                                  "another with --experiment NAME")
            return found.experiment_id
        folder = sqlite_folder(self.uri)
        # A local database keeps its artifacts beside it, not in whatever folder the export ran from.
        location = (folder / "mlartifacts" / re.sub(r"[^\w.-]", "_", name)).as_uri() if folder else None
        return self.client.create_experiment(name, artifact_location=location)

    def exported(self) -> dict[str, Any]:
        """The experiment's runs that carry a toptune run id, by that id."""
        from mlflow.entities import ViewType

        found, token = {}, None
        while True:
            page = self.client.search_runs([self.experiment_id], run_view_type=ViewType.ACTIVE_ONLY,
                                           max_results=1000, page_token=token)
            for mlflow_run in page:
                toptune_id = mlflow_run.data.tags.get(RUN_ID_TAG)
                if toptune_id:
                    found.setdefault(toptune_id, []).append(mlflow_run)
            token = page.token
            if not token:
                return found

    def export(self, store: Store, runs: list[dict]) -> ExportSummary:
        summary = ExportSummary(self.uri, self.experiment, self.experiment_id)
        with _quiet_mlflow():
            try:
                done = self.exported()
                for run in runs:
                    self._one(store, run, done.get(run["id"], []), summary)
            except ToptuneError:
                raise
            except Exception as exc:
                raise ExportError(f"exporting to MLflow '{self.uri}' failed: {_one_line(exc)} "
                                  f"({len(summary.exported)} run(s) exported before)") from exc
        return summary

    def _one(self, store: Store, run: dict, previous: list, summary: ExportSummary) -> None:
        if run["status"] not in STATUS:
            summary.running.append(run["id"])
            return
        complete = [r for r in previous if r.data.tags.get(EXPORT_TAG) == "complete"]
        if complete:
            summary.skipped.append(run["id"])
            summary.mlflow_ids[run["id"]] = complete[0].info.run_id
            return
        for broken in previous:  # an export cut short: replaced whole
            self.client.delete_run(broken.info.run_id)
        mlflow_id = self.log(store, run)
        summary.exported.append(run["id"])
        summary.mlflow_ids[run["id"]] = mlflow_id
        if self.model_folder(store, run) is not None:
            summary.with_model += 1

    @staticmethod
    def model_folder(store: Store, run: dict) -> Path | None:
        """``<store>.artifacts/<run id>/model/`` (``toptune.models`` writes it there) when the run saved one."""
        folder = model_folder(store.path, run["id"])
        return folder if run.get("model_bytes") and folder.is_dir() else None

    def log(self, store: Store, run: dict) -> str:
        """Log one run; returns its MLflow run id."""
        from mlflow.entities import Metric, Param, RunTag

        started, ended = _ms(run.get("created_at")), _ms(run.get("finished_at"))
        tags = run_tags(run, store.path)
        mlflow_run = self.client.create_run(self.experiment_id, start_time=started, tags=tags, run_name=run_name(run))
        mlflow_id = mlflow_run.info.run_id
        stamp = ended or started or 0
        metrics = [Metric(k, v, stamp, 0) for k, v in run_metrics(run).items()]
        for epoch in store.epochs(run["id"]):
            metrics += [Metric(f"epoch.{name}", float(epoch[name]), stamp, int(epoch["epoch"]))
                        for name in EPOCH_METRICS if _number(epoch.get(name)) is not None]
        params = [Param(k, v) for k, v in run_params(run, self.param_limit).items()]
        for start in range(0, max(len(metrics), len(params)), BATCH):
            self.client.log_batch(mlflow_id, metrics=metrics[start:start + BATCH], params=params[start:start + BATCH])
        self.client.log_dict(mlflow_id, run.get("info") or {}, "toptune/info.json")
        self.client.log_dict(mlflow_id, run.get("spec") or {}, "toptune/spec.json")
        folder = self.model_folder(store, run)
        if folder is not None:
            self.client.log_artifacts(mlflow_id, str(folder), "model")
        self.client.log_batch(mlflow_id, tags=[RunTag(EXPORT_TAG, "complete")])
        self.client.set_terminated(mlflow_id, STATUS[run["status"]], end_time=ended)
        return mlflow_id


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:400]}" if text else type(exc).__name__


def select_runs(store: Store, run_ids: list[str] | None = None, limit: int | None = None, **equals) -> list[dict]:
    """The store's runs to export, oldest first: those named, or those matching the column filters."""
    store.require()
    equals = {k: v for k, v in equals.items() if v is not None}
    unknown = set(equals) - set(FILTERS)
    if unknown:
        raise ExportError(f"unknown filter(s) {', '.join(sorted(unknown))} (one of {', '.join(FILTERS)})")
    if run_ids:
        runs = [store.get_run(run_id) for run_id in dict.fromkeys(run_ids)]
        runs = [r for r in runs if all(r.get(k) == v for k, v in equals.items())]
    else:
        runs = store.runs(limit=limit, **equals)
    return sorted(runs, key=lambda r: str(r.get("created_at")))


def export_runs(store: Store, tracking_uri: str | None = None, experiment: str = DEFAULT_EXPERIMENT,
                run_ids: list[str] | None = None, limit: int | None = None, **equals) -> ExportSummary:
    """Export the selected runs of ``store`` to MLflow; see the module docstring."""
    runs = select_runs(store, run_ids, limit, **equals)
    return Exporter(tracking_uri, experiment).export(store, runs)
