"""Reads done in DuckDB (``toptune.store.queries``) give what the Python summaries give on the same runs."""

from __future__ import annotations

import statistics

import numpy as np
import pandas as pd
import pytest

from toptune.store import Store
from toptune.store import queries as q
from toptune.studies import compare as cmp

DATASETS = ("digits", "photos")


def record(store: Store, method: str, dataset: str, classifier, seed: int, accuracy: float, seconds: float,
           link: str | None = None, status: str = "finished") -> str:
    params = {"run": {"seed": seed, "image_size": 64}, "classifier": {"seed": seed, "M": 100}} if classifier else \
        {"run": {"seed": seed, "image_size": 64, "epochs": 3}}
    run_id = store.start_run({"method": method, "backbone": "tiny", "classifier": classifier, "dataset": dataset,
                              "seed": seed, "params": params, "comparison_id": link,
                              "info": {"plan": {"preset": "cpu", "seeds": 3}} if link else {}})
    if status == "finished":
        store.finish_run(run_id, {"accuracy": accuracy, "train_time_s": seconds, "params": params})
    else:
        store.fail_run(run_id, "boom [/x]")
    return run_id


@pytest.fixture(scope="module")
def filled(tmp_path_factory):
    """Comparisons over two datasets and two classifiers, seeds 0..2, one incomplete, one failed run."""
    store = Store(tmp_path_factory.mktemp("queries") / "s.duckdb")
    rng = np.random.default_rng(0)
    for i, (dataset, classifier) in enumerate([(d, c) for d in DATASETS for c in ("kernel", "ridge")]):
        link = f"cmp{i}"
        for seed in range(3):
            record(store, "top-tune", dataset, classifier, seed, 0.8 + rng.random() / 10, 1 + rng.random(), link)
            record(store, "fine-tune", dataset, None, seed, 0.8 + rng.random() / 10, 20 + rng.random(), link)
    record(store, "top-tune", "digits", "kernel", 0, 0.9, 1.0, "lonely")  # no fine-tuning run: incomplete
    record(store, "top-tune", "digits", "kernel", 5, 0.0, 0.0, status="failed")
    return store


def test_comparisons_in_sql_match_the_python_summary(filled):
    by_sql = {c.comparison_id: c for c in cmp.comparisons(filled)}
    groups = {}
    for row in filled.runs(linked_by="comparison_id"):
        groups.setdefault(row["comparison_id"], []).append(row)
    by_python = {c.comparison_id: c for c in map(cmp.Comparison.from_runs, groups.values()) if c is not None}
    assert set(by_sql) == set(by_python) == {f"cmp{i}" for i in range(4)}
    for key, c in by_python.items():
        mine = by_sql[key]
        assert (mine.dataset, mine.backbone, mine.classifier) == (c.dataset, c.backbone, c.classifier)
        settings = ("dataset_label", "image_size", "fine_image_size", "epochs", "preset", "seeds")
        assert [getattr(mine, k) for k in settings] == [getattr(c, k) for k in settings] == \
            [c.dataset, 64, 64, 3, "cpu", 3]  # the store labels a run without one by its dataset
        for side in ("top", "fine"):
            a, b = getattr(mine, side), getattr(c, side)
            assert a.n_runs == b.n_runs == 3
            assert a.accuracy == pytest.approx(b.accuracy) and a.accuracy_std == pytest.approx(b.accuracy_std)
            assert a.train_time_s == pytest.approx(b.train_time_s)
        assert mine.verdict == c.verdict and sorted(mine.run_ids) == sorted(c.run_ids)
    assert [c.comparison_id for c in cmp.comparisons(filled, q.RunFilter({"dataset": ["photos"]}))] == ["cmp2", "cmp3"]


def test_filters_search_sort_and_pages(filled):
    counts = q.count(filled)
    assert counts["all"] == 26 and counts["failed"] == 1
    only = q.RunFilter({"classifier": ["ridge"]}, keep_missing=("classifier",))
    assert q.count(filled, only)["all"] == 12 + 6  # ridge runs, and every fine-tuning run (no classifier)
    assert q.count(filled, q.RunFilter(search="BOOM [/x]"))["all"] == 1  # case-insensitive, literal text
    first = q.frame(filled, ["id", "accuracy"], order="accuracy", descending=True, limit=5)
    second = q.frame(filled, ["id", "accuracy"], order="accuracy", descending=True, limit=5, offset=5)
    every = q.frame(filled, ["id", "accuracy"], order="accuracy", descending=True)
    assert list(first["id"]) + list(second["id"]) == list(every["id"][:10])
    assert list(every["accuracy"].dropna()) == sorted(every["accuracy"].dropna(), reverse=True)
    expected = {"dataset": list(DATASETS), "classifier": ["kernel", "ridge"]}
    assert q.options(filled, ["dataset", "classifier"]) == expected
    with pytest.raises(ValueError):
        q.frame(filled, ["id"], order="id; DROP TABLE runs")
    with pytest.raises(ValueError):
        q.RunFilter({"params": ["x"]}).where()


def test_seed_summary_groups_runs_that_differ_only_by_seed(filled):
    summary = q.seed_summary(filled)
    kernel_digits = summary[(summary["classifier"] == "kernel") & (summary["dataset"] == "digits")]
    # cmp0's three seeds are one configuration; the lonely run (seed 0, same parameters) joins them.
    (row,) = kernel_digits.to_dict("records")
    accuracies = [r["accuracy"] for r in filled.runs(status="finished")
                  if r["classifier"] == "kernel" and r["dataset"] == "digits"]
    assert row["runs"] == 4 and row["seeds"] == 3
    assert row["accuracy_mean"] == pytest.approx(statistics.fmean(accuracies))
    assert row["accuracy_std"] == pytest.approx(statistics.stdev(accuracies))


def test_points_past_the_limit_are_a_sample_with_the_whole_pareto_front(filled):
    everything, total = q.points(filled, limit=10_000)
    sample, same_total = q.points(filled, limit=6)
    assert total == same_total == len(everything) == 25 and len(sample) < total
    for _, rows in everything.groupby("dataset"):
        rows = rows.sort_values(["train_time_s", "accuracy"], ascending=[True, False])
        front = rows[rows["accuracy"] > rows["accuracy"].cummax().shift(fill_value=-1.0)]
        assert set(front["id"]) <= set(sample["id"])


def test_grouped_stats_are_an_ablation(filled):
    stats = q.grouped_stats(filled, "classifier", "accuracy")
    finished = pd.DataFrame(filled.runs(status="finished"))
    ridge = finished[(finished["classifier"] == "ridge") & (finished["method"] == "top-tune")]["accuracy"]
    row = stats[(stats["classifier"] == "ridge") & (stats["method"] == "top-tune")].iloc[0]
    assert row["mean"] == pytest.approx(ridge.mean()) and row["count"] == len(ridge)


def test_the_version_changes_with_every_write_and_only_then(filled):
    before = q.version(filled.path)
    assert q.version(filled.path) == before
    q.count(filled)  # reads change nothing
    assert q.version(filled.path) == before
    record(filled, "top-tune", "digits", "ridge", 9, 0.5, 1.0)
    assert q.version(filled.path) != before
