"""Every dashboard page through Streamlit's AppTest: a missing store, an empty one, and one with runs."""

import importlib.util
import itertools

import pytest

from tests.support import dashboard as support
from tests.support.dashboard import PAGES, array, charts, frame_with, open_page, texts
from tests.support.plugins import registered, write_distribution
from toptune import registry
from toptune.dashboard import data
from toptune.dashboard.widgets.ui import literal
from toptune.store import Store

filled_store, filled = support.filled_store, support.filled  # fixtures

# The Plugins page lists broken plugins as errors by design; the others show none on a healthy store.
QUIET = [p for p in PAGES if p != "plugins"]


@pytest.mark.parametrize("page", PAGES)
def test_every_page_opens_without_a_store_and_creates_none(page, tmp_path, monkeypatch):
    path = tmp_path / "later" / "runs.duckdb"
    monkeypatch.setenv("TOPTUNE_STORE", str(path))
    at = open_page(page)
    assert not at.exception
    if page in QUIET:
        assert not at.error
    if page in ("runs", "compare", "clustering", "sweeps", "sql", "predict"):
        assert "No store at" in texts(at)
    assert not path.parent.exists()


# What a page says on an empty store: how to fill it.
EMPTY_HINTS = {"runs": "No runs in this store yet", "compare": "No finished runs yet",
               "clustering": "--export-latents", "sweeps": "No sweep yet", "robustness": "toptune robustness",
               "selection": "toptune select-study", "predict": "No saved model yet"}


@pytest.mark.parametrize("page", QUIET)
def test_every_page_opens_on_an_empty_store(page, tmp_path, monkeypatch):
    path = tmp_path / "empty.duckdb"
    Store(path).create()  # creates the file
    monkeypatch.setenv("TOPTUNE_STORE", str(path))
    at = open_page(page)
    assert not at.exception and not at.error
    assert EMPTY_HINTS.get(page, "") in texts(at)
    if page in EMPTY_HINTS:
        assert charts(at) == []


def test_runs_page_lists_every_run_with_its_status(filled):
    path, ids = filled
    at = open_page("runs")
    assert not at.exception and not at.error
    table = frame_with(at, "status_badge", "id")
    assert sorted(table["id"]) == sorted(r["id"] for r in Store(path).runs())
    status = dict(zip(table["id"], table["status_badge"]))
    assert status[ids["running"]] == ["running"] and status[ids["failed"]] == ["failed"]
    assert "running 1" in texts(at) and "failed 1" in texts(at)
    n = len(table)  # every run of the filter, not one page of them
    assert [b.label for b in at.get("download_button")] == [f"Export {n} runs as CSV", f"Export {n} runs as Parquet"]
    seeds = frame_with(at, "config", "seeds")
    assert set(seeds["method"]) == {"top-tune", "fine-tune"} and seeds["runs"].sum() == 6


def test_runs_page_filters_and_search_come_from_the_url(filled):
    _path, ids = filled
    at = open_page("runs", {"method": "top-tune", "status": "finished", "sort": "accuracy", "desc": "false"})
    table = frame_with(at, "status_badge", "id")
    assert set(table["method"]) == {"top-tune"} and len(table) == 3
    assert list(table["accuracy"]) == sorted(table["accuracy"])
    assert at.multiselect(key="method").value == ["top-tune"]
    found = frame_with(open_page("runs", {"q": ids["failed"]}), "status_badge", "id")
    assert list(found["id"]) == [ids["failed"]]


def test_runs_page_shows_a_fine_tuning_run_in_detail(filled):
    path, ids = filled
    run_id = next(i for i in ids["ridge"].run_ids if Store(path).get_run(i)["method"] == "fine-tune")
    run = Store(path).get_run(run_id)
    at = open_page("runs", {"run": run_id})
    assert not at.exception and not at.error
    assert at.selectbox(key="run_choice").value == run_id
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["accuracy"] == f"{run['accuracy']:.4f}" and "training time" in metrics
    figures = charts(at)
    heatmap = next(f for f in figures if f.data[0].type == "heatmap")
    assert array(heatmap.data[0].z).sum() == run["n_test"]
    curves = next(f for f in figures if any(t.name == "train loss" for t in f.data))
    assert list(array(curves.data[0].x)) == [e["epoch"] for e in Store(path).epochs(run_id)]
    assert at.query_params["run"] == run_id


def test_runs_page_shows_why_a_run_failed(filled):
    path, ids = filled
    at = open_page("runs", {"run": ids["failed"]})
    assert [e.value for e in at.error] == [literal(Store(path).get_run(ids["failed"])["error"])]  # shown as is
    assert not at.exception


def test_compare_page_draws_the_trade_off(filled):
    path, ids = filled
    at = open_page("compare")
    assert not at.exception and not at.error
    metrics = {m.label: m.value for m in at.metric}
    expected = data.verdict_summary(data.load_comparisons(path))[-1]
    assert metrics["comparisons"] == "2"
    assert all(metrics[v] == str(expected.counts[v]) for v in expected.counts)
    scatter, delta, speedup, *ablations = charts(at)
    assert [t.name for t in scatter.data] == ["fine-tune", "top-tune", "Pareto front · digits"]
    assert scatter.layout.xaxis.type == "log"
    finished = [r for r in Store(path).runs() if r["status"] == "finished"]
    assert sum(len(array(t.x)) for t in scatter.data[:2]) == len(finished)
    front_x, front_y = array(scatter.data[2].x), array(scatter.data[2].y)
    best = max(finished, key=lambda r: (r["accuracy"], -r["train_time_s"]))
    assert front_y[-1] == best["accuracy"] and front_x[0] == min(r["train_time_s"] for r in finished)
    assert front_x[-1] == max(r["train_time_s"] for r in finished)
    assert all(a < b for a, b in itertools.pairwise(front_y[:-1]))  # each step buys accuracy with time
    bars = sorted(v for t in delta.data for v in array(t.y))
    assert bars == pytest.approx(sorted([ids["ridge"].delta_points, ids["logistic"].delta_points]))
    assert any(s.type == "rect" and (s.y0, s.y1) == (-1, 1) for s in delta.layout.shapes)
    assert speedup.layout.yaxis.type == "log"
    assert len(ablations) == 2


def test_compare_filters_apply_to_every_chart_and_go_into_the_url(filled):
    _path, ids = filled
    at = open_page("compare")
    at.multiselect(key="classifier").select("logistic").run()
    at.selectbox(key="by").select("backbone").run()
    assert at.query_params["classifier"] == "logistic"  # the browser writes it into the URL
    assert {m.label: m.value for m in at.metric}["comparisons"] == "1"
    scatter, delta, *_ = charts(at)
    methods = {t.name: len(array(t.x)) for t in scatter.data[:2]}
    assert methods == {"fine-tune": 3, "top-tune": 1}  # fine-tuning runs have no classifier, so they stay
    assert [v for t in delta.data for v in array(t.y)] == pytest.approx([ids["logistic"].delta_points])
    table = frame_with(at, "comparison_id", "verdict")
    assert list(table["comparison_id"]) == [ids["logistic"].comparison_id]
    assert [list(t.x) for t in charts(at)[-1].data] == [["dash-tiny-cnn"]] * 2  # grouped by backbone


def test_sql_page_runs_every_example(filled):
    at = open_page("sql")
    examples = at.selectbox(key="example").options
    assert len(examples) >= 5
    for example in examples:
        at.selectbox(key="example").select(example).run()
        at.button(key="run_query").click().run()
        assert not at.exception and not at.error, (example, [e.value for e in at.error])
        assert len(at.dataframe) == 2  # the result and the schema reference
    assert "sql" in at.query_params  # the query is in the URL, so it can be shared


def test_sql_results_match_the_store_and_download_as_csv(filled):
    path, _ = filled
    at = open_page("sql", {"sql": "SELECT id, status FROM runs ORDER BY id"})
    at.button(key="run_query").click().run()
    table = at.dataframe[0].value
    assert list(table["id"]) == sorted(r["id"] for r in Store(path).runs())
    (download,) = at.get("download_button")
    assert download.label == "Download CSV"


@pytest.mark.parametrize("sql", [
    "DROP TABLE runs",
    "DELETE FROM runs",
    "COPY runs TO '/tmp/x.csv'",
    "SELECT * FROM read_csv('/etc/passwd')",
    "ATTACH '/tmp/other.duckdb' AS other",
    "INSTALL httpfs",
    "SELECT 1; DROP TABLE runs",
])
def test_sql_console_refuses_writes_files_and_attach(filled, sql):
    path, _ = filled
    before = Store(path).runs()
    at = open_page("sql", {"sql": sql})
    at.button(key="run_query").click().run()
    assert not at.exception
    (error,) = at.error
    assert error.value and "Traceback" not in error.value
    assert not at.get("download_button")
    assert Store(path).runs() == before


def test_sql_timeout_interrupts_a_long_query(filled):
    import time

    # A join of 10^12 pairs: minutes of work on two cores, so only the timeout can end it this soon.
    at = open_page("sql", {"sql": "SELECT count(*) FROM range(1000000) a, range(1000000) b "
                                  "WHERE a.range % 7 = b.range % 11"})
    at.number_input(key="timeout").set_value(1)
    start = time.monotonic()
    at.button(key="run_query").click().run()
    assert time.monotonic() - start < 20
    (error,) = at.error
    assert "timeout" in error.value and not at.exception


def test_plugins_page_lists_every_plugin_and_names_broken_ones(plugin_site):
    write_distribution(plugin_site, "toptune-kaput", {"toptune.backbones": {"kaput": "kaput_mod:X"}},
                       {"kaput_mod.py": "raise RuntimeError('boom at import')\n"})
    at = open_page("plugins")
    assert not at.exception
    tables = dict(zip(registry.GROUPS, (e.value for e in at.dataframe)))
    listed = {(kind, n) for kind, table in tables.items() for n in table["name"]}
    assert listed == {(i.kind, i.name) for i in registry.discover()}
    backbones = tables["backbone"].set_index("name")
    assert backbones.loc["kaput", "status"] == ["error"] and backbones.loc["kaput", "distribution"] == "toptune-kaput"
    assert backbones.loc["efficientnet_lite0", "status"] == ["ok"]
    assert any("kaput" in e.value and "toptune-kaput" in e.value and "boom at import" in e.value for e in at.error)
    if importlib.util.find_spec("falkon") is None:  # an optional dependency missing is a warning, not a breakage
        assert tables["classifier"].set_index("name").loc["falkon", "status"] == ["unavailable"]
        assert any("falkon not installed" in w.value for w in at.warning)
        assert not any("falkon" in e.value for e in at.error)


def test_predict_page_loads_a_runs_model_and_prepares_its_onnx_file(filled):
    pytest.importorskip("onnx")
    path, ids = filled
    store = Store(path)
    run_id = next(i for i in ids["ridge"].run_ids if store.get_run(i)["method"] == "top-tune")
    with registered(**{support.BACKBONE: ("backbone", support.TinyBackbone)}):
        at = open_page("predict", {"run": run_id})
        assert not at.exception and not at.error, [e.value for e in at.error]
        assert at.selectbox(key="predict_run").value == run_id
        assert "top-tune model · 10 classes · input 16 px" in texts(at)
        at.button(key="predict_export").click().run()
        assert not at.exception and not at.error
        assert f"{run_id}.onnx" in str(at.get("download_button")[0].proto)
    assert {r["id"] for r in data.model_runs(path)} >= {run_id}


def test_the_misclassified_gallery_reads_the_runs_wrong_test_images(filled):
    path, ids = filled
    run = Store(path).get_run(ids["logistic"].run_ids[0])
    wrong = data.misclassified(path, run, limit=5)
    expected = Store(path).query(f"SELECT count(*) FROM predictions WHERE run_id = '{run['id']}' "
                                 "AND y_true <> y_pred", max_rows=None).rows[0][0]
    assert len(wrong) == min(5, expected) and all(w["true"] != w["predicted"] for w in wrong)
    assert all(w["image"].size == (8, 8) and w["true"] in run["info"]["classes"] for w in wrong)
