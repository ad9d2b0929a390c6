"""Top-tuning end to end on real data with the real pre-trained backbone (small subsets: seconds)."""

import numpy as np
import pytest
from PIL import Image

from toptune import registry
from toptune.errors import DatasetError, ParamError, UnknownPluginError
from toptune.features.cache import FeatureCache
from toptune.progress import Progress
from toptune.runner import execute, run
from toptune.spec import RunSpec, resolve
from toptune.store import Store

SMALL = {"max_train": 80, "max_test": 40}


class RecordingProgress(Progress):
    def __init__(self):
        self.stage_name, self.totals, self.done = None, [], {}

    def begin(self, stage, total):
        self.stage_name = stage
        self.totals.append((stage, total))

    def set_total(self, total):
        self.totals.append((self.stage_name, total))

    def advance(self, n=1):
        self.done[self.stage_name] = self.done.get(self.stage_name, 0) + n


@pytest.fixture
def store(tmp_path):
    return Store(tmp_path / "runs.duckdb")


@pytest.mark.slow
def test_top_tune_records_a_finished_run_and_reuses_features(store, tmp_path, monkeypatch):
    cache = FeatureCache(tmp_path / "cache")
    run_id, result = run(RunSpec(classifier="ridge", params=SMALL), store, cache=cache)
    row = store.get_run(run_id)
    assert row["status"] == "finished" and row["method"] == "top-tune"
    assert row["n_train"] == 80 and row["n_test"] == 40 and row["n_classes"] == 10
    assert row["feature_dim"] == 1280 and row["pretrain_source"] == "imagenet-1k"
    assert row["accuracy"] == result.accuracy and result.accuracy >= 0.6  # 8 images per class
    assert row["train_time_s"] == pytest.approx(row["extract_time_s"] + row["fit_time_s"])
    assert row["trained_params"] == (1280 + 1) * 10 and row["peak_memory_mb"] > 0
    assert not row["cache_hit"]
    n_pred = store.query(f"select count(*) from predictions where run_id = '{run_id}'").rows[0][0]
    assert n_pred == 40

    # the second classifier reads cached features: the backbone is never built again
    def no_build(self):
        raise AssertionError("backbone rebuilt despite cached features")

    monkeypatch.setattr(type(registry.create_backbone("efficientnet_lite0")), "build", no_build)
    recorder = RecordingProgress()
    run_id2, result2 = run(RunSpec(classifier="kernel", params=SMALL), store, cache=cache, progress=recorder)
    row2 = store.get_run(run_id2)
    assert row2["cache_hit"] and row2["extract_time_s"] == pytest.approx(row["extract_time_s"])
    # the fit stage's bar counted the solver's conjugate-gradient iterations out of its cap
    assert ("fit kernel", 20) in recorder.totals and 0 < recorder.done["fit kernel"] <= 20
    assert row2["params"]["classifier"]["sigma"] > 0  # the chosen sigma is stored with the run
    assert row2["params"]["classifier"]["seed"] == 0 and result2.accuracy >= 0.6


def test_invalid_params_write_nothing(store):
    for spec, error, message in [
        (RunSpec(params={"M": -5}), ParamError, r"parameter 'M': -5 \(must be >= 1\)"),
        (RunSpec(params={"M": "many"}), ParamError, "expected int"),
        (RunSpec(params={"learning_rate": 1}), ParamError, "unknown parameter 'learning_rate'"),
        (RunSpec(classifier="kernal"), UnknownPluginError, "did you mean 'kernel'"),
        (RunSpec(method="fine-tine"), ParamError, "unknown method"),
        (RunSpec(seed=-1), ParamError, "seed must be"),
    ]:
        with pytest.raises(error, match=message):
            run(spec, store)
    assert store.runs() == []


def test_param_routing_qualified_and_grouped():
    rs = resolve(RunSpec(params={"classifier.M": "50", "max_train": "10", "dataset": {"test_size": 0.5}}))
    assert rs.params["classifier"]["M"] == 50 and rs.params["run"]["max_train"] == 10
    assert rs.params["dataset"]["test_size"] == 0.5
    rs = resolve(RunSpec(params={"device": "cpu", "seed": 3}))  # run-level device propagates to the plugin
    assert rs.params["run"]["device"] == "cpu" and rs.params["classifier"]["device"] == "cpu"
    assert rs.params["classifier"]["seed"] == 3

    @registry.register_classifier("tmp-split")
    class Split:
        api_version, description = 1, "shares a name with the digits dataset"
        params = {"test_size": registry.P.Param("float", 0.1)}

        def __init__(self, test_size=0.1):
            self.test_size = test_size

        def fit(self, X, y):
            return self

        predict = score = fit

    try:
        with pytest.raises(ParamError, match="ambiguous: write dataset.test_size or classifier.test_size"):
            resolve(RunSpec(classifier="tmp-split", params={"test_size": 0.3}))
    finally:
        registry.unregister("classifier", "tmp-split")


def test_missing_dataset_folder_is_refused_before_a_run_is_recorded(store, tmp_path):
    spec = RunSpec(dataset="imagefolder", classifier="ridge", params={"path": str(tmp_path / "nowhere")})
    with pytest.raises(DatasetError, match="nowhere"):
        run(spec, store)
    assert store.runs() == []


def test_ctrl_c_marks_run_interrupted(store, monkeypatch):
    cls = registry.load("dataset", "digits")

    def interrupted(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(cls, "load", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run(RunSpec(classifier="ridge"), store)
    (row,) = store.runs()
    assert row["status"] == "interrupted"


def _png_tree(root, n_per_class=6, classes=("red", "green", "blue")):
    colours = {"red": (220, 20, 20), "green": (20, 200, 20), "blue": (20, 20, 220)}
    rng = np.random.default_rng(0)
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(n_per_class):
            noise = rng.integers(0, 40, (32, 32, 3))
            Image.fromarray(np.clip(np.array(colours[c]) + noise, 0, 255).astype(np.uint8)).save(root / c / f"{i}.png")
    return root


@pytest.mark.slow
def test_imagefolder_with_corrupt_files_skips_and_counts(store, tmp_path):
    root = _png_tree(tmp_path / "imgs")
    (root / "red" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (root / "green" / "notes.txt").write_text("not an image")
    run_id, result = run(RunSpec(dataset="imagefolder", classifier="ridge",
                                 params={"path": str(root), "test_size": 0.5}), store)
    row = store.get_run(run_id)
    assert row["status"] == "finished" and result.accuracy == 1.0
    assert row["info"]["skipped_train"] + row["info"]["skipped_test"] == 1
    assert row["info"]["ignored_files"] == 1
    assert row["n_train"] + row["n_test"] == 18


def test_execute_needs_no_store(tmp_path, monkeypatch):
    result = execute(RunSpec(classifier="ridge", params={"max_train": 20, "max_test": 10}),
                     cache=FeatureCache(tmp_path / "c"))
    assert result.n_test == 10 and 0.0 <= result.accuracy <= 1.0
    assert not (tmp_path / "store.duckdb").exists()
