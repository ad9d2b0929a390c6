"""Naming, notes, tags, archiving and deleting runs through the store's writer path; dataset labels; schema v6."""

from __future__ import annotations

import duckdb
import pytest

from toptune.errors import ParamError, StoreError
from toptune.runner import start_record
from toptune.spec import RunSpec, resolve
from toptune.store import Store, schema
from toptune.store import queries as q
from toptune.store.artifacts import run_dir, write_artifacts
from toptune.studies import compare as cmp

RECORD = {"method": "top-tune", "backbone": "b", "classifier": "ridge", "dataset": "digits", "seed": 0}


def finished(store: Store, accuracy: float = 0.5, **extra) -> str:
    run_id = store.start_run({**RECORD, **extra})
    store.finish_run(run_id, {"accuracy": accuracy, "train_time_s": 1.0}, y_true=[0, 1], y_pred=[0, 0],
                     epochs=[{"epoch": 1, "train_loss": 0.5}])
    return run_id


def test_names_notes_and_tags_are_stored_and_unknown_ids_change_nothing(tmp_path):
    st = Store(tmp_path / "s.duckdb")
    a, b = finished(st), finished(st)
    st.rename(a, "  baseline 224 px ")
    st.annotate(a, "first try\nwith the cpu preset")
    assert st.tag([a, b], add=["photos", "baseline"]) == 2
    assert st.tag([a, b], add=["baseline"]) == 0  # each tag once
    assert st.tag([b], remove=["baseline"]) == 1
    rows = {r["id"]: r for r in st.runs()}
    assert rows[a]["name"] == "baseline 224 px" and rows[a]["note"] == "first try\nwith the cpu preset"
    assert rows[a]["tags"] == ["baseline", "photos"] and rows[b]["tags"] == ["photos"]
    st.rename(a, "")  # an empty name removes it
    assert st.get_run(a)["name"] is None
    with pytest.raises(StoreError, match="no run with id nope"):
        st.tag([b, "nope"], add=["x"])
    with pytest.raises(StoreError, match="no run with id nope"):
        st.rename("nope", "x")
    assert st.get_run(b)["tags"] == ["photos"]  # the known id of a refused call is left alone
    for bad in ("", "a,b", "x" * 41, "two\nlines"):
        with pytest.raises(ParamError):
            st.tag([a], add=[bad])
    with pytest.raises(ParamError, match="one line"):
        st.rename(a, "two\nlines")


def test_archived_runs_are_hidden_everywhere_until_restored(tmp_path):
    st = Store(tmp_path / "s.duckdb")
    kept = finished(st, 0.9, comparison_id="c1")
    fine = st.start_run({**RECORD, "method": "fine-tune", "classifier": None, "comparison_id": "c1"})
    st.finish_run(fine, {"accuracy": 0.8, "train_time_s": 9.0})
    failed = st.start_run(RECORD)
    st.fail_run(failed, "boom")
    running = st.start_run(RECORD)
    assert st.archive([failed, fine]) == 2 and st.archive([failed]) == 0
    assert {r["id"] for r in st.runs()} == {kept, running}
    assert {r["id"] for r in st.runs(archived=True)} == {failed, fine}
    assert len(st.runs(archived=None)) == 4 and st.count_runs() == 2 and st.count_runs(archived=True) == 2
    assert q.count(st)["all"] == 2 and q.count(st, q.RunFilter(archived=True))["all"] == 2
    assert q.count(st, q.RunFilter(archived=None))["all"] == 4
    assert cmp.comparisons(st) == []  # its fine-tuning run is archived: the comparison is incomplete
    with pytest.raises(StoreError, match="still running"):
        st.archive([running])
    assert st.restore([fine, kept]) == 1
    assert [c.comparison_id for c in cmp.comparisons(st)] == ["c1"]
    assert st.get_run(failed)["archived_at"] is not None  # a run is found by its id, archived or not


def test_tags_filter_runs_in_the_store_and_in_sql(tmp_path):
    st = Store(tmp_path / "s.duckdb")
    a, b, c = finished(st), finished(st), finished(st)
    st.tag([a, b], add=["photos"])
    st.tag([a], add=["baseline"])
    assert {r["id"] for r in st.runs(tags=["photos"])} == {a, b}
    assert [r["id"] for r in st.runs(tags=["photos", "baseline"])] == [a]
    assert q.count(st, q.RunFilter(tags=("photos",)))["all"] == 2
    assert q.tags(st) == ["baseline", "photos"]
    assert q.count(st, q.RunFilter(search="baseline"))["all"] == 1  # search reads tags too
    rows = st.query("select id from runs where list_contains(tags, 'baseline')").rows
    assert rows == [(a,)] and c not in {r[0] for r in rows}


def test_delete_removes_rows_predictions_epochs_and_files_and_refuses_running_runs(tmp_path):
    st = Store(tmp_path / "s.duckdb")
    gone, kept = finished(st), finished(st)
    write_artifacts(st.path, gone, {"latent": {"z": [1.0, 2.0]}})
    assert run_dir(st.path, gone).is_dir()
    running = st.start_run(RECORD)
    with pytest.raises(StoreError, match="still running"):
        st.delete_runs([gone, running])
    assert st.get_run(gone)["status"] == "finished"  # nothing of a refused call is deleted
    with pytest.raises(StoreError, match="no run with id nope"):
        st.delete_runs([gone, "nope"])
    assert st.delete_runs([gone]) == 1
    assert not run_dir(st.path, gone).exists()
    con = duckdb.connect(str(st.path), read_only=True)
    try:
        for table, column in (("runs", "id"), ("predictions", "run_id"), ("epochs", "run_id")):
            ids = {r[0] for r in con.execute(f"select {column} from {table}").fetchall()}
            assert gone not in ids and (kept in ids or table != "runs")
    finally:
        con.close()


def test_housekeeping_on_a_missing_store_creates_nothing(tmp_path):
    st = Store(tmp_path / "nope.duckdb")
    with pytest.raises(StoreError, match="no store at"):
        st.archive(["abc"])
    assert not st.path.exists()


def _label(store: Store, folder) -> str:
    rs = resolve(RunSpec("top-tune", "efficientnet_lite0", "imagefolder", "ridge", {"path": str(folder)}))
    return store.get_run(store.start_run(start_record(rs)))["dataset_label"]


def test_a_folder_is_labelled_by_its_name_and_two_folders_of_one_name_apart(tmp_path):
    st = Store(tmp_path / "s.duckdb")
    first, second = tmp_path / "a" / "photos", tmp_path / "b" / "photos"
    first.mkdir(parents=True)
    second.mkdir(parents=True)
    assert _label(st, first) == "photos"
    other = _label(st, second)
    assert other.startswith("photos-") and len(other) == len("photos-") + 6
    assert _label(st, first) == "photos" and _label(st, str(second) + "/") == other  # stable per folder
    digits = st.start_run(start_record(resolve(RunSpec(classifier="ridge"))))
    assert st.get_run(digits)["dataset_label"] == "digits"  # no path: the plugin's name
    assert st.get_run(digits)["info"]["python"]  # the start info stays once the run finishes
    st.finish_run(digits, {"accuracy": 1.0, "info": {"n_train": 3}})
    assert st.get_run(digits)["info"]["python"] and st.get_run(digits)["info"]["n_train"] == 3


def test_migration_to_v6_labels_earlier_runs_by_their_dataset_path(tmp_path):
    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE schema_info (version INTEGER, applied_at TIMESTAMP)")
    for version, statements in enumerate(schema.MIGRATIONS[:5], 1):
        for statement in statements:
            con.execute(statement)
        con.execute("INSERT INTO schema_info VALUES (?, now())", [version])
    con.execute("""INSERT INTO runs (id, created_at, status, method, dataset, params) VALUES
                   ('a', now(), 'finished', 'top-tune', 'imagefolder', '{"dataset": {"path": "/data/flowers/"}}'),
                   ('b', now(), 'finished', 'top-tune', 'digits', '{"dataset": {}}')""")
    con.close()
    rows = {r["id"]: r for r in Store(path).runs()}
    assert rows["a"]["dataset_label"] == "flowers" and rows["b"]["dataset_label"] == "digits"
    assert rows["a"]["tags"] is None and rows["a"]["archived_at"] is None
