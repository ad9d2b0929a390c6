"""The CLI at 80, 100 and 160 columns: every table fits, no number is cut; and the housekeeping commands."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from toptune.cli import app
from toptune.store import Store

WIDTHS = (80, 100, 160)


def invoke(width: int, *args: str, **kwargs):
    return CliRunner().invoke(app, list(args), env={"COLUMNS": str(width)}, **kwargs)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """Comparisons on two folders' data and digits at two image sizes, named and tagged runs, a failed one."""
    st = Store(tmp_path_factory.mktemp("tables") / "s.duckdb")
    settings = [("holiday_photos_2024", 0.93611, 0.93722, 12.31, 119.8, 224, 3, "cpu", 1),
                ("holiday_photos_2024", 0.94113, 0.91121, 12.32, 119.9, 128, 3, "cpu", 1),
                ("digits", 0.98111, 0.96121, 2.31, 60.12, 224, 15, "gpu", 3)]
    for k, (label, top, fine, top_s, fine_s, size, epochs, preset, seeds) in enumerate(settings):
        for seed in range(seeds):
            for method, accuracy, seconds in (("top-tune", top, top_s), ("fine-tune", fine, fine_s)):
                run_id = st.start_run({
                    "method": method, "dataset": "imagefolder" if label != "digits" else "digits",
                    "dataset_label": label, "backbone": "efficientnet_lite0", "seed": seed,
                    "classifier": "kernel" if method == "top-tune" else None, "comparison_id": f"cmp{k}",
                    "params": {"run": {"image_size": size, "epochs": epochs}},
                    "info": {"plan": {"preset": preset, "seeds": seeds}}})
                st.finish_run(run_id, {"accuracy": accuracy + seed / 1000, "train_time_s": seconds + seed,
                                       "fit_time_s": 1.25, "n_train": 12345, "n_test": 4321})
    first = st.runs()[-1]["id"]
    st.rename(first, "the first run on the holiday photos")
    st.tag([first], add=["baseline", "holiday photos"])
    failed = st.start_run({"method": "top-tune", "dataset": "digits", "classifier": "ridge"})
    st.fail_run(failed, "DatasetError: something precise went wrong here")
    return st


def _lines_fit(output: str, width: int) -> bool:
    return all(len(line) <= width for line in output.splitlines())


@pytest.mark.parametrize("width", WIDTHS)
def test_runs_fits_and_shows_every_number_whole(store, width):
    res = invoke(width, "runs", "--limit", "50", "--store", str(store.path))
    assert res.exit_code == 0, res.output
    assert _lines_fit(res.output, width) and "…" not in res.output
    rows = json.loads(invoke(width, "runs", "--limit", "50", "--json", "--store", str(store.path)).output)
    for row in rows:  # accuracy and training time come first after the id and status: shown at every width
        if row["accuracy"] is not None:
            assert f"{row['accuracy']:.4f}" in res.output and f"{row['train_time_s']:.2f}" in res.output
    assert {"dataset_label", "name", "note", "tags", "archived_at"} <= set(rows[0])  # --json stays complete
    if width == 160:
        assert "holiday_photos_2024" in res.output and "imagefolder" not in res.output  # the folder, not the plugin
    else:
        assert "left out to fit" in res.output


@pytest.mark.parametrize("width", WIDTHS)
def test_report_fits_and_starts_with_the_cards(store, width):
    res = invoke(width, "report", "--store", str(store.path))
    assert res.exit_code == 0, res.output
    assert _lines_fit(res.output, width) and "…" not in res.output
    said = " ".join(res.output.split())
    assert said.startswith("verdicts (the newest comparison of each dataset and setup)")
    assert "holiday_photos_2024 · efficientnet_lite0 · 128 px" in said and "(3 epochs, 1 seed, cpu preset)" in said
    assert "digits · efficientnet_lite0 · 224 px" in said and "(15 epochs, 3 seeds, gpu preset)" in said
    for number in ("0.9361", "0.9411", "0.9821 ± 0.0010"):  # top-tuning's accuracy: never left out, never cut
        assert number in res.output


SQL = "select id, accuracy, n_train, params, info from runs where accuracy is not null order by id limit 4"


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("args, numbers", [(("sql", SQL), None), (("plugins",), ["0.1.0"]),
                                           (("datasets", "--paper"), ["50,000", "10,000", "32x32"]),
                                           (("datasets",), ["60,000", "1,797"])])
def test_other_tables_fit_without_cutting_numbers(store, width, args, numbers):
    res = invoke(width, *args, "--store", str(store.path)) if args[0] == "sql" else invoke(width, *args)
    assert res.exit_code == 0, res.output
    assert _lines_fit(res.output, width) and "…" not in res.output
    if numbers is None:  # the query's figures, as `sql` shows them
        rows = store.query(SQL).rows
        numbers = [f"{accuracy:.4g}" for _, accuracy, *_ in rows] + [str(n_train) for _, _, n_train, *_ in rows]
    assert all(number in res.output for number in numbers)  # each on one line: never folded


def test_name_note_tag_archive_restore_and_delete(tmp_path):
    st = Store(tmp_path / "s.duckdb")
    ids = []
    for accuracy in (0.5, 0.6, 0.7):
        ids.append(st.start_run({"method": "top-tune", "dataset": "digits", "classifier": "ridge"}))
        st.finish_run(ids[-1], {"accuracy": accuracy, "train_time_s": 1.0}, y_true=[0], y_pred=[0])
    where = ["--store", str(st.path)]
    assert invoke(160, "name", ids[0], "baseline", *where).exit_code == 0
    assert invoke(160, "note", ids[0], "the first try", *where).exit_code == 0
    res = invoke(160, "tag", ids[0], ids[1], "--add", "photos,cpu", *where)
    assert res.exit_code == 0 and "2 of 2 run(s) changed" in res.output
    assert st.get_run(ids[0])["tags"] == ["cpu", "photos"] and st.get_run(ids[0])["note"] == "the first try"
    res = invoke(160, "runs", "--tag", "photos", "--tag", "cpu", *where)
    assert ids[0] in res.output and ids[1] in res.output and ids[2] not in res.output and "baseline" in res.output
    res = invoke(160, "tag", ids[0], "nope", "--add", "x", *where)
    assert res.exit_code == 2 and "no run with id nope" in res.output and "x" not in st.get_run(ids[0])["tags"]

    res = invoke(160, "archive", ids[2], *where)
    assert res.exit_code == 0 and "archived 1 run(s)" in res.output
    res = invoke(160, "runs", *where)
    assert ids[2] not in res.output and "1 archived run(s) hidden" in res.output
    assert [r["id"] for r in json.loads(invoke(160, "runs", "--archived", "--json", *where).output)] == [ids[2]]
    assert invoke(160, "restore", ids[2], *where).exit_code == 0 and st.get_run(ids[2])["archived_at"] is None
    assert "no failed or interrupted run" in invoke(160, "archive", "--failed", *where).output
    failed = st.start_run({"method": "top-tune", "dataset": "digits", "classifier": "ridge"})
    st.fail_run(failed, "boom")
    res = invoke(160, "archive", "--failed", *where)
    assert res.exit_code == 0 and "archived 1 run(s)" in res.output and st.get_run(failed)["archived_at"]

    res = invoke(160, "delete", ids[1], *where, input="")  # no terminal to ask on: refused, nothing deleted
    assert res.exit_code == 2 and "add --yes" in res.output and st.get_run(ids[1])
    res = invoke(160, "delete", ids[1], "--yes", *where)
    assert res.exit_code == 0 and "deleted 1 run(s)" in res.output
    assert [r["id"] for r in st.runs(archived=None)] == [failed, ids[2], ids[0]]
    assert not st.query(f"select * from predictions where run_id = '{ids[1]}'").rows


def test_a_missing_data_folder_is_named_by_the_flag_typed_and_writes_nothing(tmp_path):
    store = tmp_path / "s.duckdb"
    for command in ("run", "compare"):
        res = invoke(160, command, "--dataset", "imagefolder", "--data", str(tmp_path / "nope"), "--store",
                     str(store), "-q")
        assert res.exit_code == 2 and re.search(r"check --data DIR$", res.output.strip()), res.output
        assert "--param" not in res.output
    res = invoke(160, "run", "--dataset", "imagefolder", "--param", f"path={tmp_path / 'nope'}", "--store",
                 str(store), "-q")
    assert res.exit_code == 2 and "check --param path=DIR" in res.output
    assert not store.exists()  # not a run, not even the file
