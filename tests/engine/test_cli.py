"""The CLI as a user meets it: exit codes, one-line errors, tables."""

import json
import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from toptune.cli import app
from toptune.store import Store

cli = CliRunner()


def invoke(*args):
    return cli.invoke(app, list(args), env={"COLUMNS": "200"})


def test_invalid_param_is_one_line_nonzero_and_writes_nothing(tmp_path):
    store = tmp_path / "s.duckdb"
    res = invoke("run", "--param", "M=-5", "--store", str(store), "-q")
    assert res.exit_code == 2
    assert "error: invalid value for classifier 'kernel' parameter 'M': -5 (must be >= 1)" in res.output
    assert "Traceback" not in res.output
    assert Store(store).runs() == []


@pytest.mark.parametrize("args, message", [
    (("--classifier", "kernal"), "unknown classifier 'kernal'; did you mean 'kernel'?"),
    (("--backbone", "efficientnet_lite9"), "unknown backbone 'efficientnet_lite9'; did you mean"),
    (("--dataset", "digit"), "did you mean 'digits'?"),
    (("--param", "M"), "--param expects key=value"),
    (("--param", "standardize=maybe"), "expected bool"),
])
def test_bad_names_and_values(tmp_path, args, message):
    res = invoke("run", *args, "--store", str(tmp_path / "s.duckdb"), "-q")
    assert res.exit_code == 2 and message in res.output, res.output


def test_missing_and_empty_folders_fail_the_run_with_a_clear_line(tmp_path):
    store = tmp_path / "s.duckdb"
    res = invoke("run", "--dataset", "imagefolder", "--data", str(tmp_path / "missing"), "--store", str(store), "-q")
    assert res.exit_code == 2 and "does not exist" in res.output
    (tmp_path / "empty").mkdir()
    res = invoke("run", "--dataset", "imagefolder", "--data", str(tmp_path / "empty"), "--store", str(store), "-q")
    assert res.exit_code == 2 and "has no class folders" in res.output
    # a missing folder is checked before the run is recorded; an empty one only when the dataset loads
    assert [r["status"] for r in Store(store).runs()] == ["failed"]


def test_sql_errors_and_results(tmp_path):
    store = tmp_path / "s.duckdb"
    res = invoke("sql", "selec * from runs", "--store", str(store))
    assert res.exit_code == 2 and "syntax error" in res.output and "Traceback" not in res.output
    res = invoke("sql", "delete from runs", "--store", str(store))
    assert res.exit_code == 2 and "only read-only queries" in res.output
    Store(store).start_run({"method": "top-tune", "dataset": "digits", "classifier": "ridge"})
    res = invoke("sql", "select dataset, classifier, status from runs", "--store", str(store), "--format", "csv")
    assert res.exit_code == 0 and res.output.splitlines() == ["dataset,classifier,status", "digits,ridge,running"]


def test_runs_lists_recent_runs_with_status(tmp_path):
    store = tmp_path / "s.duckdb"
    res = invoke("runs", "--store", str(store))
    assert res.exit_code == 2 and "no store at" in res.output and not store.exists()  # a read creates nothing
    Store(store).create()
    res = invoke("runs", "--store", str(store))
    assert res.exit_code == 0 and "no runs" in res.output
    st = Store(store)
    rid = st.start_run({"method": "top-tune", "dataset": "digits", "classifier": "kernel"})
    st.fail_run(rid, "DatasetError: something precise")
    res = invoke("runs", "--store", str(store))
    assert res.exit_code == 0 and rid in res.output and "failed" in res.output
    assert "something precise" in res.output


def test_runs_filters_and_says_how_many_it_left_out(tmp_path):
    st = Store(tmp_path / "s.duckdb")
    ids = {(m, d): st.start_run({"method": m, "dataset": d, "classifier": "ridge" if m == "top-tune" else None})
           for m in ("top-tune", "fine-tune") for d in ("digits", "flowers")}
    res = invoke("runs", "--method", "fine-tune", "--dataset", "flowers", "--json", "--store", str(st.path))
    assert [r["id"] for r in json.loads(res.output)] == [ids["fine-tune", "flowers"]]
    res = invoke("runs", "--classifier", "ridge", "--limit", "1", "--store", str(st.path))
    assert res.exit_code == 0 and "the newest 1 of 2 runs" in res.output
    assert ids["top-tune", "flowers"] in res.output and ids["fine-tune", "flowers"] not in res.output


def test_real_process_exit_code_and_stderr(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "toptune.cli", "run", "--param", "max_train=1", "-q",
                           "--store", str(tmp_path / "s.duckdb")], capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "200"})
    assert proc.returncode == 2
    expected = "error: invalid value for top-tune parameter 'max_train': 1 (must be >= 2)"
    assert proc.stderr.strip().splitlines() == [expected]


@pytest.mark.slow
def test_demo_meets_the_acceptance_bar(tmp_path):
    """`toptune demo` on the full digits set: kernel >= 0.90, two finished runs, queryable by SQL and duckdb."""
    import duckdb

    store = tmp_path / "demo.duckdb"
    res = invoke("demo", "--store", str(store), "-q")
    assert res.exit_code == 0, res.output
    assert str(store.resolve()) in res.output
    res = invoke("sql", "select method, classifier, accuracy, train_time_s from runs", "--store", str(store),
                 "--format", "json")
    rows = {r["classifier"]: r for r in __import__("json").loads(res.output)}
    assert set(rows) == {"kernel", "ridge"} and all(r["method"] == "top-tune" for r in rows.values())
    assert rows["kernel"]["accuracy"] >= 0.90 and rows["ridge"]["accuracy"] >= 0.85
    con = duckdb.connect(str(store), read_only=True)
    assert con.execute("select count(*) from runs where status = 'finished' and n_test = 450").fetchone()[0] == 2
    con.close()


def test_datasets_lists_and_describes(tmp_path):
    res = invoke("datasets")
    assert res.exit_code == 0 and "digits" in res.output and "cifar10" in res.output
    res = invoke("datasets", "digits")
    assert res.exit_code == 0
    assert "digits: 1347 train, 450 test, 10 classes, mean image size 8x8" in res.output
    res = invoke("datasets", "cifar10", "--param", f"root={tmp_path}", "--param", "download=false")
    assert res.exit_code == 2 and "dataset 'cifar10' is not in" in res.output
