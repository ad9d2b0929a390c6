"""The dashboard's data layer, charts and launch-form logic, on a store filled by the real engine."""

import io
import json
import statistics

import pandas as pd
import pytest

from tests.support import dashboard as support
from toptune.cli import dashboard as server
from toptune.dashboard import charts, data
from toptune.dashboard.launch import form as lf
from toptune.errors import ParamError
from toptune.params import Param
from toptune.spec import RunSpec
from toptune.store import Store
from toptune.studies import compare as cmp

filled_store = support.filled_store  # a fixture


def test_store_path_comes_from_argv_then_environment(tmp_path):
    assert data.store_path(["--store", "a.duckdb"], {"TOPTUNE_STORE": "b.duckdb"}).name == "a.duckdb"
    assert data.store_path(["-x", "--other", "1"], {"TOPTUNE_STORE": "b.duckdb"}).name == "b.duckdb"
    assert data.store_path([], {}).name == "toptune.duckdb"


def test_a_missing_store_reads_as_empty_and_is_not_created(tmp_path):
    path = tmp_path / "nothing" / "here.duckdb"
    assert data.counts(path) == {"all": 0} and data.page(path).empty and data.load_comparisons(path) == []
    assert data.schema(path).empty
    assert not path.parent.exists()


def test_runs_pages_filter_search_and_sort_in_the_store(filled_store):
    path, ids = filled_store
    runs = data.page(path, size=1000)
    assert set(runs["id"]) == {r["id"] for r in Store(path).runs()}
    assert set(runs["status"]) == {"finished", "failed", "running"}
    assert data.counts(path)["all"] == len(runs)

    def ids_of(chosen, text="", **kw):
        return set(data.page(path, data.run_filter(chosen, text, **kw), size=1000)["id"])

    assert ids_of({"dataset": ["imagefolder"]}) == {ids["failed"]}
    assert ids_of({"classifier": ["ridge"], "status": ["finished"]}) == set(ids["ridge"].run_ids[:2])
    assert [data.run_detail(path, i)["classifier"] for i in ids_of({}, "LOGISTIC finished")] == ["logistic"]
    assert ids_of({}, "no-such-word") == set()
    # fine-tuning runs have no classifier; the Compare page keeps them next to the chosen classifier
    kept = data.page(path, data.run_filter({"classifier": ["logistic"]}, keep_missing=("classifier",)), size=1000)
    assert set(kept["method"]) == {"top-tune", "fine-tune"} and "ridge" not in set(kept["classifier"])
    by_accuracy = data.page(path, order="accuracy", descending=True, size=1000)["accuracy"].dropna().tolist()
    assert by_accuracy == sorted(by_accuracy, reverse=True)
    first, second = data.page(path, size=3, number=1), data.page(path, size=3, number=2)
    assert list(first["id"]) + list(second["id"]) == list(data.page(path, size=6)["id"])
    assert data.filter_options(path, ("dataset",)) == {"dataset": ["digits", "imagefolder"]}


def test_run_labels_name_a_run_without_empty_parts(filled_store):
    path, ids = filled_store
    labels = data.run_labels(data.page(path, size=1000))
    failed = ids["failed"]
    # An image folder's run is labelled by its folder's name, not by "imagefolder".
    assert labels[failed] == f"{failed} · top-tune · dash-tiny-cnn · ridge · runs.duckdb.empty · seed 0 · failed"
    fine = next(i for i in ids["logistic"].run_ids if Store(path).get_run(i)["method"] == "fine-tune")
    assert labels[fine] == f"{fine} · fine-tune · dash-tiny-cnn · digits · seed 0 · finished"


def test_seed_summary_is_mean_and_std_over_seeds(filled_store):
    path, ids = filled_store
    runs = data.page(path, size=1000)
    summary = data.seed_summary(path, data.run_filter(finished=True))
    ridge = summary[(summary["classifier"] == "ridge") & (summary["method"] == "top-tune")].iloc[0]
    seeds = [Store(path).get_run(i) for i in ids["ridge"].run_ids if Store(path).get_run(i)["classifier"]]
    assert ridge["seeds"] == 2 == len(seeds)
    assert ridge["accuracy_mean"] == pytest.approx(statistics.fmean(r["accuracy"] for r in seeds))
    assert ridge["accuracy_std"] == pytest.approx(statistics.stdev(r["accuracy"] for r in seeds))
    assert ridge["accuracy"] == f"{ridge['accuracy_mean']:.4f} ± {ridge['accuracy_std']:.4f}"
    # every finished run counts once; the two comparisons' fine-tuning runs share one configuration
    assert summary["runs"].sum() == (runs["status"] == "finished").sum()
    fine = summary[summary["method"] == "fine-tune"]
    assert list(fine["runs"]) == [3] and list(fine["seeds"]) == [2]


def test_exports_round_trip(filled_store):
    path, _ = filled_store
    some = data.export(path, data.run_filter({"method": ["top-tune"]}))
    assert set(some["method"]) == {"top-tune"} and len(some) == data.counts(path, data.run_filter(
        {"method": ["top-tune"]}))["all"]
    from_csv = pd.read_csv(io.BytesIO(data.to_csv(some)))
    from_parquet = pd.read_parquet(io.BytesIO(data.to_parquet(some)))
    for frame in (from_csv, from_parquet):
        assert sorted(frame["id"]) == sorted(some["id"]) and "status_badge" not in frame
        assert {"params", "train_time_s", "comparison_id"} <= set(frame.columns)
    assert json.loads(from_parquet["params"].iloc[0])["run"]["max_train"] == 120


def test_confusion_matrix_counts_every_test_prediction(filled_store):
    path, ids = filled_store
    run = Store(path).get_run(ids["ridge"].run_ids[0])
    matrix = data.confusion_matrix(path, run["id"])
    values = matrix.to_numpy()
    assert list(matrix.index) == list(matrix.columns) and values.sum() == run["n_test"]
    assert values.trace() / values.sum() == pytest.approx(run["accuracy"])
    assert data.confusion_matrix(path, ids["failed"]).empty


def test_epoch_curves_of_a_fine_tuning_run(filled_store):
    path, ids = filled_store
    fine = next(i for i in ids["ridge"].run_ids if Store(path).get_run(i)["method"] == "fine-tune")
    curves = data.epoch_curves(path, fine)
    assert list(curves["epoch"]) == [0, 1] or list(curves["epoch"]) == [1, 2]
    loss, accuracy = charts.epoch_figures(curves)
    # Two charts, each with its y axis named and its own legend (one shared legend read as one chart's).
    assert [t.name for t in loss.data] == ["train loss"] and loss.layout.yaxis.title.text == "training loss"
    assert {t.name for t in accuracy.data} >= {"train accuracy"} and accuracy.layout.yaxis.title.text == "accuracy"
    assert all(f.layout.xaxis.title.text == "epoch" and f.layout.showlegend is not False for f in (loss, accuracy))


def test_comparisons_frame_matches_the_engine(filled_store):
    path, ids = filled_store
    items = data.load_comparisons(path)
    frame = data.comparisons_frame(items).set_index("comparison_id")
    for c in (ids["ridge"], ids["logistic"]):
        row = frame.loc[c.comparison_id]
        assert row["delta_points"] == pytest.approx(c.delta_points)
        assert row["speedup"] == pytest.approx(c.speedup) and row["verdict"] == c.verdict
        assert row["pretrain_source"] == "none" and row["seeds"] == c.top.n_runs
    overall = data.verdict_summary(items)[-1]
    assert overall.group == "all" and overall.n == 2 == sum(overall.counts.values())


def test_pareto_front_keeps_only_undominated_runs():
    runs = pd.DataFrame({"id": list("abcdef"), "train_time_s": [1.0, 2.0, 3.0, 0.5, 3.0, 10.0],
                         "accuracy": [0.5, 0.4, 0.9, 0.3, 0.8, 0.9]})
    assert list(charts.pareto_front(runs)["id"]) == ["d", "a", "c"]
    figure = charts.tradeoff_scatter(runs.assign(method=["top-tune"] * 3 + ["fine-tune"] * 3, dataset="d"))
    front = next(t for t in figure.data if t.name == "Pareto front · d")
    # the best accuracy within each time budget, up to the slowest run
    assert list(front.x) == [0.5, 1.0, 3.0, 10.0] and list(front.y) == [0.3, 0.5, 0.9, 0.9]
    assert figure.layout.xaxis.type == "log"


def test_log_axes_label_every_tick_in_full():
    ticks = charts.log_ticks([4.8, 45.7, None, float("nan")])
    # from 1 to 100 in 1-2-5 steps, each labelled with its whole value
    assert ticks["tickvals"] == [1, 2, 5, 10, 20, 50, 100, 200, 500]
    assert ticks["ticktext"] == ["1", "2", "5", "10", "20", "50", "100", "200", "500"]
    assert charts.log_ticks([]) == {}
    runs = pd.DataFrame({"id": list("ab"), "method": ["top-tune", "fine-tune"], "dataset": "d",
                         "train_time_s": [4.8, 45.7], "accuracy": [0.9, 0.8]})
    assert list(charts.tradeoff_scatter(runs).layout.xaxis.ticktext) == ticks["ticktext"]


def test_each_dataset_has_its_own_pareto_front():
    runs = pd.DataFrame({"id": list("abcd"), "method": ["top-tune", "fine-tune"] * 2,
                         "dataset": ["easy", "easy", "hard", "hard"], "train_time_s": [1.0, 5.0, 2.0, 8.0],
                         "accuracy": [0.9, 0.95, 0.3, 0.6]})
    figure = charts.tradeoff_scatter(runs)
    fronts = {t.name: list(t.y) for t in figure.data if t.name.startswith("Pareto")}
    assert fronts == {"Pareto front · easy": [0.9, 0.95, 0.95], "Pareto front · hard": [0.3, 0.6, 0.6]}


def test_delta_bars_draw_the_same_band(filled_store):
    path, _ = filled_store
    frame = data.comparisons_frame(data.load_comparisons(path))
    figure = charts.delta_bars(frame)
    band = next(s for s in figure.layout.shapes if s.type == "rect")
    assert (band.y0, band.y1) == (-cmp.SAME_BAND_POINTS, cmp.SAME_BAND_POINTS)
    bars = {t.name: list(t.y) for t in figure.data}
    assert sorted(v for ys in bars.values() for v in ys) == sorted(frame["delta_points"])
    assert charts.speedup_bars(frame).layout.yaxis.type == "log"


def test_launch_form_sends_only_changed_values():
    sections = lf.run_sections("top-tune", "efficientnet_lite0", "digits", "kernel")
    fields = [f for s in sections for f in s.fields]
    keys = {f.key for f in fields}
    assert {"max_train", "cache", "backbone.weights", "dataset.test_size", "classifier.M", "classifier.lam"} <= keys
    raw = {f.key: lf.initial(f) for f in fields}
    assert lf.answers(fields, raw) == {}
    raw.update({"max_train": " 40 ", "classifier.kernel": "laplacian", "cache": False, "batch_size": 32})
    assert lf.answers(fields, raw) == {"params": {"max_train": "40", "classifier.kernel": "laplacian",
                                                  "cache": False}}
    by_key = {f.key: f for f in fields}
    assert lf.widget_kind(by_key["classifier.lam"].param, 1e-6) == "text"  # accepts 'auto' too
    assert lf.widget_kind(by_key["batch_size"].param, 32) == "number"
    assert lf.widget_kind(by_key["classifier.kernel"].param, "gaussian") == "select"


def test_launch_payloads_are_validated_like_the_cli():
    payload = lf.run_payload("top-tune", "efficientnet_lite0", "digits", "ridge", 3, {"params": {"max_train": "40"}})
    assert RunSpec.from_dict(payload) == RunSpec("top-tune", "efficientnet_lite0", "digits", "ridge",
                                                 {"max_train": "40"}, 3)
    with pytest.raises(ParamError, match="max_train"):
        lf.run_payload("top-tune", "efficientnet_lite0", "digits", "ridge", 0, {"params": {"max_train": "1"}})
    fine = lf.run_payload("fine-tune", "efficientnet_lite0", "digits", "ridge", 0, {})
    assert fine["classifier"] is None
    plan = lf.compare_payload("efficientnet_lite0", "digits", "ridge", 2, "cpu",
                              {"shared": {"max_train": "50"}, "fine": {"epochs": 1}})
    specs = cmp.plan(**plan)
    assert [s.method for s in specs] == ["top-tune", "fine-tune"] * 2
    assert specs[1].params == {"image_size": 128, "max_train": "50", "epochs": 1, "lr": 1e-3}


def test_compare_form_starts_from_the_preset():
    sections = lf.compare_sections("efficientnet_lite0", "digits", "kernel", "cpu")
    starts = {(f.target, f.key): f.start for s in sections for f in s.fields}
    assert starts[("shared", "image_size")] == 128 and starts[("fine", "epochs")] == 3
    assert ("top", "cache") in starts and ("top", "classifier.M") in starts and ("fine", "cache") not in starts
    gpu = {(f.target, f.key): f.start for s in lf.compare_sections("efficientnet_lite0", "digits", "kernel", "gpu")
           for f in s.fields}
    assert gpu[("shared", "image_size")] is None and gpu[("fine", "epochs")] == 15


def test_a_plugin_that_does_not_load_gets_a_section_with_its_error(plugin_site):
    from tests.support.plugins import write_distribution

    write_distribution(plugin_site, "toptune-kaput", {"toptune.classifiers": {"kaput": "kaput_mod:X"}},
                       {"kaput_mod.py": "raise ImportError('no wheels today')\n"})
    (section,) = [s for s in lf.run_sections("top-tune", "efficientnet_lite0", "digits", "kaput")
                  if s.title.startswith("Classifier")]
    assert section.fields == [] and "toptune-kaput" in section.error and "no wheels today" in section.error


def test_describe_names_type_range_and_default():
    assert lf.describe(Param("int", None, min=2)) == "int, ≥ 2, default: automatic"
    assert lf.describe(Param("float", 1e-6, min=0.0, keywords=("auto",))) == "float, ≥ 0, or auto, default: 1e-06"


def test_server_command_is_headless_on_the_given_port(tmp_path):
    argv = server.command(tmp_path / "s.duckdb", 9123, "127.0.0.1")
    assert argv[1:4] == ["-m", "streamlit", "run"] and argv[4].endswith("app.py")
    assert "--server.headless=true" in argv and "--server.port=9123" in argv
    assert "--server.address=127.0.0.1" in argv
    assert argv[-3:] == ["--", "--store", str(tmp_path / "s.duckdb")]
    assert data.store_path(argv[argv.index("--") + 1:], {}) == tmp_path / "s.duckdb"


def test_toptune_dashboard_serves_the_app(tmp_path):
    import urllib.request

    from tests.support import browser

    with browser.dashboard(tmp_path / "s.duckdb", tmp_path / "server.log") as url, \
            urllib.request.urlopen(url, timeout=10) as reply:
        assert reply.status == 200 and b"<html" in reply.read().lower()
    log = (tmp_path / "server.log").read_text()
    assert f"store {tmp_path / 's.duckdb'}" in log and "Traceback" not in log
