"""The Robustness and Selection pages through Streamlit's AppTest: no store, no study, and real studies."""

import pytest

from tests.support.dashboard import array, charts, frame_with, open_page
from tests.support.research import fill_studies
from toptune.store import Store

# (rule, fraction, images, accuracy of seed 0, of seed 1): fine-tuning the tiny CNN for a second stays at
# chance, so the figures of one selection study are written directly, to tell the rules' bars apart.
WRITTEN = [("entropy-high", 0.25, 30, 0.50, 0.60), ("random", 0.25, 30, 0.40, 0.40),
           ("entropy-high", 0.5, 60, 0.70, 0.80), ("random", 0.5, 60, 0.65, 0.55)]


def write_selection_study(store: Store) -> str:
    study_id = "sel-written"
    for rule, fraction, n, *accuracies in WRITTEN:
        for seed, accuracy in enumerate(accuracies):
            run_id = store.start_run({"method": "fine-tune", "backbone": "written", "dataset": "digits", "seed": seed,
                                      "params": {"run": {"select": rule, "fraction": fraction}}, "study_id": study_id})
            store.finish_run(run_id, {"accuracy": accuracy, "train_time_s": 1.0, "n_train": n})
    store.fail_run(store.start_run({"method": "fine-tune", "dataset": "digits", "study_id": study_id,
                                    "params": {"run": {"select": "entropy-low", "fraction": 0.25}}}), "boom")
    return study_id


@pytest.fixture(scope="module")
def studies(tmp_path_factory):
    """Two robustness studies (the newest is shown first), a selection study, then a written one."""
    folder = tmp_path_factory.mktemp("research-store")
    found = fill_studies(folder / "runs.duckdb", folder / "features")
    found["written"] = write_selection_study(Store(folder / "runs.duckdb"))
    return folder / "runs.duckdb", found


@pytest.fixture
def filled(studies, monkeypatch):
    monkeypatch.setenv("TOPTUNE_STORE", str(studies[0]))
    return studies[1]


def test_robustness_page_plots_accuracy_against_strength(filled):
    study = filled["newer"]
    at = open_page("robustness")
    assert not at.exception and not at.error
    assert at.selectbox(key="study_choice").value == study.study_id  # newest first
    (figure,) = charts(at)
    lines = {t.name: (list(array(t.x)), list(array(t.y))) for t in figure.data}
    assert set(lines) == {"top-tune · ridge", "top-tune · logistic", "fine-tune"}
    for name, (x, y) in lines.items():
        assert x == [0.0, 0.1, 0.3]
        assert y == pytest.approx([study.cells[(name, level)].accuracy for level in x])
    assert figure.layout.xaxis.title.text == "noise σ on [0, 1] pixels"
    table = frame_with(at, "method", "0.1")
    assert list(table["method"]) == ["top-tune · logistic", "top-tune · ridge", "fine-tune"]


def test_robustness_page_switches_study_through_the_url(filled):
    older = filled["older"]
    at = open_page("robustness", {"study": older.study_id})
    (figure,) = charts(at)
    assert [t.name for t in figure.data] == ["top-tune · ridge"] and list(array(figure.data[0].x)) == [0.0, 50.0]
    assert figure.layout.xaxis.title.text == "offset norm (feature units)"
    at.selectbox(key="study_choice").select(filled["newer"].study_id).run()
    assert at.query_params["study"] == filled["newer"].study_id and len(charts(at)[0].data) == 3


def test_selection_page_shows_accuracy_per_rule_and_fraction(filled):
    at = open_page("selection")
    assert not at.exception and not at.error
    assert at.selectbox(key="study_choice").value == filled["written"]  # newest first; the failed run is left out
    (figure,) = charts(at)
    bars = {t.name: (list(t.x), list(array(t.y)), list(array(t.error_y.array))) for t in figure.data}
    assert set(bars) == {"entropy-high", "random"}
    for rule, (x, y, std) in bars.items():
        rows = [w for w in WRITTEN if w[0] == rule]
        assert x == [f"{f:g} ({n} images)" for _, f, n, *_ in rows]
        assert y == pytest.approx([(a + b) / 2 for *_, a, b in rows])
        assert std == pytest.approx([abs(a - b) / 2**0.5 for *_, a, b in rows])  # sample std of two seeds
    table = frame_with(at, "rule", "0.25 (30 images)")
    assert table.to_dict("list") == {"rule": ["random", "entropy-high"], "0.25 (30 images)": ["0.4000 ± 0.0000",
                                     "0.5500 ± 0.0707"], "0.5 (60 images)": ["0.6000 ± 0.0707", "0.7500 ± 0.0707"]}


def test_selection_page_shows_a_study_that_ran(filled):
    study = filled["selection"]
    at = open_page("selection", {"study": study.study_id})
    assert not at.exception and not at.error
    (figure,) = charts(at)
    assert {t.name for t in figure.data} == {"entropy-high", "entropy-low"}
    table = frame_with(at, "rule", "0.25 (30 images)")
    assert list(table["rule"]) == ["entropy-high", "entropy-low"] and len(table.columns) == 3
