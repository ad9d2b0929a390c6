"""``toptune mlflow-export``: runs read back with MLflow's own client from local tracking stores."""

from __future__ import annotations

import json
import os
import sys

import pytest
from typer.testing import CliRunner

from tests.support import research
from toptune.cli import app
from toptune.features.cache import FeatureCache
from toptune.runner import run, start_record
from toptune.spec import RunSpec, resolve
from toptune.store import Store
from toptune.store import mlflow_export as mx

mlflow = pytest.importorskip("mlflow")
from mlflow.tracking import MlflowClient  # noqa: E402

cli = CliRunner()


@pytest.fixture(autouse=True)
def _file_stores_allowed(monkeypatch):
    """MLflow 3 wants an opt-in for folder stores; the export sets it, the reading client here needs it too."""
    monkeypatch.setenv(mx.FILE_STORE_VARIABLE, "true")


@pytest.fixture(scope="module")
def filled(tmp_path_factory):
    """A store with a top-tuning run (model saved), a fine-tuning run (epochs), a failed and a running run."""
    folder = tmp_path_factory.mktemp("mlflow-store")
    store, cache = Store(folder / "runs.duckdb"), FeatureCache(folder / "features")
    with research.registered():
        top, _ = run(RunSpec("top-tune", research.STAGED, "digits", "ridge", research.TINY), store, cache=cache)
        fine, _ = run(RunSpec("fine-tune", research.STAGED, "digits", None, {**research.TINY, **research.FINE}),
                      store, cache=cache)
        started = start_record(resolve(RunSpec("top-tune", research.STAGED, "digits", "ridge", research.TINY)))
        failed, running = store.start_run(started), store.start_run(started)
    store.fail_run(failed, "extracting train features failed: [Errno 5] input/output error")
    return store, {"top": top, "fine": fine, "failed": failed, "running": running}


def _runs(uri: str, experiment: str = "toptune") -> dict:
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(experiment)
    return {r.data.tags[mx.RUN_ID_TAG]: r for r in client.search_runs([exp.experiment_id])}


def test_runs_arrive_with_params_metrics_tags_and_model_and_export_again_adds_nothing(filled, tmp_path):
    store, ids = filled
    uri = (tmp_path / "mlruns").as_uri()
    summary = mx.export_runs(store, uri)
    assert sorted(summary.exported) == sorted([ids["top"], ids["fine"], ids["failed"]])
    assert summary.running == [ids["running"]] and summary.with_model == 2
    found = _runs(uri)
    assert set(found) == {ids["top"], ids["fine"], ids["failed"]}

    top, stored = found[ids["top"]], store.get_run(ids["top"])
    assert top.info.status == "FINISHED" and top.info.run_name.startswith("top-tune ridge")
    assert top.data.metrics["accuracy"] == pytest.approx(stored["accuracy"])
    assert top.data.metrics["n_classes"] == 10 and top.data.metrics["fit_time_s"] == pytest.approx(stored["fit_time_s"])
    assert top.data.params["run.max_train"] == "120" and top.data.params["seed"] == "0"
    assert top.data.params["dataset.test_size"] == str(stored["params"]["dataset"]["test_size"])
    assert {k.split(".")[0] for k in top.data.params} == {"run", "backbone", "dataset", "classifier", "seed"}
    assert top.data.tags["toptune.dataset"] == "digits" and top.data.tags["toptune.backbone"] == research.STAGED
    assert top.data.tags[mx.EXPORT_TAG] == "complete"
    client = MlflowClient(tracking_uri=uri)
    model = store.path.parent / f"{store.path.name}.artifacts" / ids["top"] / "model"
    logged = sorted(a.path for a in client.list_artifacts(top.info.run_id, "model"))
    assert logged == sorted(f"model/{p.name}" for p in model.iterdir()) and logged
    info = json.loads(open(client.download_artifacts(top.info.run_id, "toptune/info.json", str(tmp_path))).read())
    assert info["classes"] == stored["info"]["classes"]

    curve = client.get_metric_history(found[ids["fine"]].info.run_id, "epoch.train_loss")
    assert [m.step for m in curve] == [e["epoch"] for e in store.epochs(ids["fine"])]
    failed = found[ids["failed"]]
    assert failed.info.status == "FAILED" and "input/output error" in failed.data.tags["toptune.error"]
    assert "accuracy" not in failed.data.metrics

    again = mx.export_runs(store, uri)
    assert again.exported == [] and sorted(again.skipped) == sorted(summary.exported)
    assert again.mlflow_ids == summary.mlflow_ids
    assert len(client.search_runs([top.info.experiment_id])) == 3


def test_an_export_cut_short_is_replaced_whole(filled, tmp_path):
    store, ids = filled
    uri = (tmp_path / "mlruns").as_uri()
    client = MlflowClient(tracking_uri=uri)
    experiment = client.create_experiment("toptune")
    half = client.create_run(experiment, tags={mx.RUN_ID_TAG: ids["top"], mx.EXPORT_TAG: "incomplete"})
    summary = mx.export_runs(store, uri, run_ids=[ids["top"]])
    assert summary.exported == [ids["top"]] and summary.mlflow_ids[ids["top"]] != half.info.run_id
    (only,) = _runs(uri).values()
    assert only.info.run_id == summary.mlflow_ids[ids["top"]] and only.data.tags[mx.EXPORT_TAG] == "complete"


def test_filters_choose_the_runs(filled, tmp_path):
    store, ids = filled
    uri = (tmp_path / "mlruns").as_uri()
    assert mx.export_runs(store, uri, "mine", method="fine-tune").exported == [ids["fine"]]
    assert mx.export_runs(store, uri, "mine", status="failed").exported == [ids["failed"]]
    assert set(_runs(uri, "mine")) == {ids["fine"], ids["failed"]}
    with pytest.raises(mx.ExportError, match="unknown filter"):
        mx.select_runs(store, colour="red")


def test_cli_exports_to_a_sqlite_store_and_keeps_artifacts_beside_it(filled, tmp_path):
    store, ids = filled
    uri = f"sqlite:///{tmp_path / 'tracking' / 'mlflow.db'}"
    (tmp_path / "tracking").mkdir()
    args = ["mlflow-export", "--store", str(store.path), "--tracking-uri", uri, "--experiment", "study",
            "--run", ids["top"]]
    res = cli.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "exported 1 run(s) (1 with a model) to MLflow experiment 'study'" in res.output
    found = _runs(uri, "study")
    assert list(found) == [ids["top"]]
    assert found[ids["top"]].info.artifact_uri.startswith((tmp_path / "tracking" / "mlartifacts").as_uri())
    res = cli.invoke(app, args + ["--json"])
    assert res.exit_code == 0 and json.loads(res.output)["skipped"] == [ids["top"]]


def test_cli_bad_inputs_are_one_line_and_exit_2(filled, tmp_path, monkeypatch):
    store, _ = filled
    uri = (tmp_path / "mlruns").as_uri()
    res = cli.invoke(app, ["mlflow-export", "--store", str(tmp_path / "none.duckdb"), "--tracking-uri", uri])
    assert res.exit_code == 2 and "Traceback" not in res.output and len(res.output.strip().splitlines()) == 1
    res = cli.invoke(app, ["mlflow-export", "--store", str(store.path), "--tracking-uri", uri, "--status", "done"])
    assert res.exit_code == 2 and "unknown status" in res.output
    monkeypatch.setitem(sys.modules, "mlflow", None)  # as if MLflow were not installed
    res = cli.invoke(app, ["mlflow-export", "--store", str(store.path), "--tracking-uri", uri])
    assert res.exit_code == 2 and "pip install 'toptune[mlflow]'" in res.output
    assert not os.path.exists(tmp_path / "mlruns")
