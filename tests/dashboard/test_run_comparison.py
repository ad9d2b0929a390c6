"""Chosen runs side by side (parameters, metrics, epoch curves), and a run's housekeeping from its detail: name, tags,
note, archive and restore, and a confirmed delete; archived runs hidden until asked for; skipped files listed."""

import pandas as pd
import pytest

from tests.support.dashboard import array, charts, frame_with, open_page, texts
from toptune.dashboard import data
from toptune.store import Store


def _fine_tune(store: Store, lr: float, accuracy: float, seed: int = 0, **info) -> str:
    run_id = store.start_run({"method": "fine-tune", "backbone": "efficientnet_lite0", "dataset": "digits",
                              "dataset_label": "digits", "seed": seed, "info": info,
                              "params": {"run": {"epochs": 3, "lr": lr, "image_size": 128}, "dataset": {"seed": None}}})
    curve = [{"epoch": e, "train_loss": 2.0 / e, "train_accuracy": accuracy - 0.1 / e, "val_accuracy": accuracy - 0.05,
              "lr": lr, "time_s": 1.0} for e in (1, 2, 3)]
    store.finish_run(run_id, {"accuracy": accuracy, "train_time_s": 30.0 * lr * 1000, "n_train": 100}, epochs=curve)
    return run_id


@pytest.fixture
def runs(tmp_path, monkeypatch):
    """Three fine-tuning runs (two learning rates, two seeds) and a top-tuning run that skipped two files."""
    path = tmp_path / "runs.duckdb"
    store = Store(path)
    ids = [_fine_tune(store, 1e-3, 0.90), _fine_tune(store, 3e-3, 0.80), _fine_tune(store, 1e-3, 0.91, seed=1)]
    top = store.start_run({"method": "top-tune", "backbone": "efficientnet_lite0", "classifier": "ridge",
                           "dataset": "imagefolder", "dataset_label": "photos", "seed": 0,
                           "params": {"run": {"image_size": 224}}})
    store.finish_run(top, {"accuracy": 0.7, "train_time_s": 3.0, "info": {  # as the engine keeps them:
        "skipped_files": [{"split": "train", "file": "cat/c.jpg", "reason": "image file is truncated"}],
        "skipped_train": 2,  # two unreadable images, the first listed
        "skipped": ["cat/a.jpg: the same file as cat/b.jpg, which counts instead"], "skipped_count": 1}})
    monkeypatch.setenv("TOPTUNE_STORE", str(path))
    return path, [*ids, top]


def test_two_runs_side_by_side(runs):
    path, (first, second, *_rest) = runs
    at = open_page("run_comparison", {"runs": [first, second]})
    assert not at.exception and not at.error
    assert at.multiselect(key="runs").value == [first, second]
    metrics, differ, same = (e.value for e in at.dataframe)  # the folded table last: equal in both runs
    assert list(differ.columns) == data.short_labels([Store(path).get_run(i) for i in (first, second)])
    assert "run.lr" in differ.index and "run.epochs" not in differ.index  # only what differs, first
    assert list(differ.loc["run.lr"]) == ["0.001", "0.003"]
    assert {"run.epochs", "run.image_size", "method"} <= set(same.index) and same.loc["dataset.seed"].isna().all()
    assert list(metrics.loc["accuracy"]) == ["0.9000", "0.8000"]
    loss, validation, train = charts(at)
    assert [t.name for t in loss.data] == list(differ.columns)  # a line per run, its own legend
    assert [list(array(t.x)) for t in loss.data] == [[1, 2, 3]] * 2
    assert loss.layout.yaxis.title.text == "train loss" and validation.layout.yaxis.title.text == "validation accuracy"


def test_the_runs_page_opens_the_chosen_runs_side_by_side(runs):
    _, (first, second, third, _top) = runs
    at = open_page("runs")
    at.multiselect(key="compare").set_value([first]).run()
    assert at.button(key="compare_runs").disabled  # one run is nothing to compare
    at.multiselect(key="compare").set_value([first, third]).run()
    assert at.button(key="compare_runs").label.startswith("Compare 2 runs")
    at.button(key="compare_runs").click().run()
    assert not at.exception and at.multiselect(key="runs").value == [first, third]
    assert at.query_params["runs"] == [first, third]


def test_fewer_than_two_runs_ask_for_more(runs):
    at = open_page("run_comparison")
    assert not at.exception and "Choose 2 to 6 runs" in texts(at) and not charts(at)


def test_a_run_is_named_tagged_and_annotated_from_its_detail(runs):
    path, (first, *_rest) = runs
    at = open_page("runs", {"run": first})
    at.text_input(key=f"name_{first}").input("baseline lr 1e-3")
    at.multiselect(key=f"tags_{first}").set_value(["keep", "paper"])
    at.text_area(key=f"note_{first}").input("the one to beat")
    at.button[[b.label for b in at.button].index("Save")].click().run()
    assert not at.exception and not at.error
    run = Store(path).get_run(first)
    assert (run["name"], run["tags"], run["note"]) == ("baseline lr 1e-3", ["keep", "paper"], "the one to beat")
    assert "baseline lr 1e-3" in texts(at) and "the one to beat" in texts(at)

    tagged = open_page("runs", {"tag": "paper"})
    assert list(frame_with(tagged, "status_badge", "id")["id"]) == [first]  # the Tags filter


def test_archived_runs_are_hidden_until_asked_for_and_restorable(runs):
    path, (first, second, third, top) = runs
    at = open_page("runs", {"run": second})
    at.button(key=f"archive_{second}").click().run()
    assert not at.exception and Store(path).get_run(second)["archived_at"] is not None
    assert second not in set(frame_with(open_page("runs"), "status_badge", "id")["id"])
    assert {c.comparison_id for c in data.load_comparisons(path)} == set()  # and out of every summary
    shown = open_page("runs", {"archived": "true", "run": second})
    assert list(frame_with(shown, "status_badge", "id")["id"]) == [second]
    shown.button(key=f"restore_{second}").click().run()
    assert Store(path).get_run(second)["archived_at"] is None
    assert second in set(frame_with(open_page("runs"), "status_badge", "id")["id"])
    data.archive(path, [first, second, third, top])  # every run archived: the page still offers them
    at = open_page("runs")
    assert "No runs in this store yet" not in texts(at) and at.toggle(key="archived").value is False
    assert frame_with(at, "status_badge", "id").empty


def test_deleting_a_run_needs_a_confirmation(runs):
    path, (first, *_rest) = runs
    at = open_page("runs", {"run": first})
    delete = at.button(key=f"delete_{first}")
    assert delete.disabled
    at.checkbox(key=f"sure_{first}").check().run()
    at.button(key=f"delete_{first}").click().run()
    assert not at.exception and first not in {r["id"] for r in Store(path).runs(archived=True)}
    assert "run" not in at.query_params


def test_a_read_only_dashboard_changes_nothing(runs, monkeypatch):
    monkeypatch.setenv("TOPTUNE_DASHBOARD_READ_ONLY", "1")
    _, (first, *_rest) = runs
    at = open_page("runs", {"run": first})
    assert not [b for b in at.button if b.key and b.key.endswith(first)] and not at.text_area


def test_the_files_a_run_skipped_are_listed_with_why(runs):
    _, (*_fine, top) = runs
    at = open_page("runs", {"run": top})
    assert any(e.label == "3 file(s) skipped" for e in at.expander)
    skipped = frame_with(at, "file", "reason")
    assert list(skipped["file"]) == ["cat/c.jpg", "cat/a.jpg"] and list(skipped["split"]) == ["train", ""]
    assert list(skipped["reason"]) == ["image file is truncated", "the same file as cat/b.jpg, which counts instead"]
    assert "The first 2 of 3 are kept with the run." in texts(at)


def test_an_empty_value_shows_one_way(runs):
    _, (first, *_rest) = runs
    at = open_page("runs", {"run": first})
    params = frame_with(at, "key", "value").set_index("key")["value"]
    assert pd.isna(params["dataset.seed"]) and params["run.lr"] == "0.001"  # a table's empty cell, never "null"
    cells = [v for f in (e.value for e in at.dataframe) for v in f.astype(object).to_numpy().ravel()]
    assert not {"null", "None", "nan"} & {v for v in cells if isinstance(v, str)}
