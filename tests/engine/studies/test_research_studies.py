"""Robustness and data-selection studies: planned, run, linked by study_id, summarised, from CLI and jobs."""

import pytest
from typer.testing import CliRunner

from tests.support.research import FINE, STAGED, TINY, registered
from toptune import jobs
from toptune.cli import app
from toptune.errors import ParamError
from toptune.features.cache import FeatureCache
from toptune.store import Store
from toptune.studies import robustness as rob
from toptune.studies import selection as sel


@pytest.fixture(autouse=True)
def backbones():
    with registered():
        yield


def test_robustness_study_links_every_run_and_summarises_per_level(tmp_path):
    store = Store(tmp_path / "s.duckdb")
    specs = rob.plan("digits", STAGED, "awgn", [0.0, 0.3], ["ridge", "logistic"], with_fine_tune=True, shared=TINY,
                     fine=FINE, preset="cpu")
    assert [(s.method, s.classifier, s.params["shift_level"]) for s in specs] == [
        ("top-tune", "ridge", 0.0), ("top-tune", "logistic", 0.0), ("fine-tune", None, 0.0),
        ("top-tune", "ridge", 0.3), ("top-tune", "logistic", 0.3), ("fine-tune", None, 0.3)]
    study = rob.STUDY.run(specs, store, cache=FeatureCache(tmp_path / "cache"))
    rows = store.runs(study_id=study.study_id)
    assert study.study_id.startswith("rob-") and len(rows) == 6 and len(study.run_ids) == 6
    assert all(r["params"]["run"]["shift"] == "awgn" and r["params"]["run"]["shift_on"] == "test" for r in rows)
    assert study.levels == [0.0, 0.3] and study.series == ["top-tune · logistic", "top-tune · ridge", "fine-tune"]
    by_id = {r["id"]: r for r in rows}
    for point in study.points():
        run = next(r for r in by_id.values() if rob.series(r) == point["series"]
                   and r["params"]["run"]["shift_level"] == point["level"])
        assert point["accuracy"] == run["accuracy"]
    assert all(r["info"]["plan"] == {"preset": "cpu", "seeds": 1} for r in rows)  # the settings behind its answer
    assert [s.study_id for s in rob.STUDY.find(store)] == [study.study_id]
    assert sel.STUDY.find(store) == []  # a robustness study is not a selection study


def test_robustness_plans_refuse_what_cannot_run():
    with pytest.raises(ParamError, match="drop --with-fine-tune"):
        rob.plan("digits", STAGED, "embedding", [0, 1], with_fine_tune=True, preset="cpu")
    with pytest.raises(ParamError, match="--shift must be one of"):
        rob.plan("digits", STAGED, "none", [0, 1], preset="cpu")
    with pytest.raises(ParamError, match="distinct numbers"):
        rob.parse_levels("0,0.1,0.1", "awgn")
    with pytest.raises(ParamError, match="in \\[0, 1\\]"):
        rob.parse_levels("0,2", "awgn")


def test_selection_study_compares_rules_at_equal_sizes(tmp_path):
    store = Store(tmp_path / "s.duckdb")
    specs = sel.plan("digits", STAGED, [0.25, 0.5], ["entropy-high", "random"], shared={**TINY, **FINE}, preset="cpu")
    study = sel.STUDY.run(specs, store, cache=FeatureCache(tmp_path / "cache"))
    rows = store.runs(study_id=study.study_id)
    assert study.study_id.startswith("sel-") and len(rows) == 4
    assert all(r["info"]["plan"] == {"preset": "cpu", "seeds": 1} for r in rows)
    assert {(r["params"]["run"]["select"], r["params"]["run"]["fraction"], r["n_train"]) for r in rows} == {
        ("entropy-high", 0.25, 30), ("random", 0.25, 30), ("entropy-high", 0.5, 60), ("random", 0.5, 60)}
    assert study.subset_sizes == {0.25: 30, 0.5: 60} and study.rules == ["random", "entropy-high"]
    assert [name for name, _ in study.table()] == ["random", "entropy-high"]
    assert [s.study_id for s in sel.STUDY.find(store)] == [study.study_id] and rob.STUDY.find(store) == []


def test_cli_prints_accuracy_per_level_and_per_rule(tmp_path):
    store = str(tmp_path / "s.duckdb")
    cli = CliRunner()
    args = ["--dataset", "digits", "--backbone", STAGED, "--store", store, "--preset", "cpu", "-q"]
    tiny = [f"--param={k}={v}" for k, v in TINY.items()]
    res = cli.invoke(app, ["robustness", *args, "--shift", "blur", "--levels", "0,2", "--classifiers", "ridge", *tiny],
                     env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    (study,) = rob.STUDY.find(Store(store))
    row = next(line for line in res.output.splitlines() if "top-tune · ridge" in line)
    assert [f"{c.accuracy:.4f}" for c in (study.cells[("top-tune · ridge", lvl)] for lvl in (0.0, 2.0))] == \
        [cell for cell in row.replace("│", " ").split() if cell[0].isdigit()]
    res = cli.invoke(app, ["select-study", *args, "--fractions", "0.5", "--rules", "entropy-low", *tiny,
                           *[f"--param={k}={v}" for k, v in FINE.items()]], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert "0.5 (60 images)" in res.output and "entropy-low" in res.output
    res = cli.invoke(app, ["select-study", *args, "--rules", "entropy-middle"])
    assert res.exit_code == 2 and "--rules takes names from" in res.output


def test_studies_run_as_dashboard_jobs(tmp_path):
    path = tmp_path / "s.duckdb"
    payload = {"dataset": "digits", "backbone": STAGED, "fractions": [0.5], "rules": ["random"],
               "shared": {**TINY, **FINE}, "preset": "cpu"}
    job_id = jobs.submit(path, "select-study", payload)
    assert jobs.work(path, idle_exit_s=0.1) == 1
    job = jobs.get_job(path, job_id)
    assert job["state"] == "finished", job["error"]
    (run,) = Store(path).runs()
    assert job["run_ids"] == [run["id"]] and run["study_id"].startswith("sel-")
