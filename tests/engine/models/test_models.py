"""Models: every finished run leaves one; it loads, predicts its own test images as the run did, exports to
one ONNX or TorchScript file that ONNX Runtime agrees with, and refuses bad input with one line."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.datasets import load_digits
from typer.testing import CliRunner

from tests.support.plugins import registered
from tests.support.research import StagedBackbone
from toptune import load_model, registry
from toptune.cli import app
from toptune.errors import ModelError
from toptune.models import export as exporter
from toptune.models import files
from toptune.runner import run
from toptune.spec import RunSpec
from toptune.store import Store
from toptune.store.artifacts import run_dir

CLASSIFIERS = ["ridge", "logistic", "fc-head", "kernel"]
TINY = {"image_size": 16, "batch_size": 16}


class SeededTiny(StagedBackbone):
    """Reproducible weights (the plugin rebuilds them): they are not copied into the model."""

    pretrain_source = "imagenet-1k"
    digest = "seeded-tiny"


def digit_folder(root, classes=5, per_class=16):
    """Real 8x8 digits, upscaled, as PNG files in class folders: ``root/<digit>/<i>.png``."""
    digits = load_digits()
    for label in range(classes):
        (root / str(label)).mkdir(parents=True)
        images = digits.images[digits.target == label][:per_class]
        for i, image in enumerate(images):
            pixels = np.round(image / 16 * 255).astype(np.uint8)
            Image.fromarray(pixels).resize((24, 24)).save(root / str(label) / f"{i}.png")
    return root


@pytest.fixture
def folder(tmp_path):
    return digit_folder(tmp_path / "digits")


@pytest.fixture(autouse=True)
def tiny():
    with registered(**{"tiny": ("backbone", StagedBackbone), "seeded-tiny": ("backbone", SeededTiny)}):
        yield


def cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})


def top_tune(store, folder, classifier="ridge", backbone="tiny", **params):
    spec = RunSpec("top-tune", backbone, "imagefolder", classifier,
                   {**TINY, "dataset.path": str(folder), "cache": False, **params})
    run_id, _ = run(spec, store)
    return run_id


def stored_predictions(store, folder, run_id) -> tuple[list[str], list[int]]:
    """The run's test images, in sample order, and the predictions the run stored for them."""
    split = registry.create("dataset", "imagefolder", path=str(folder)).load().test
    rows = store.query(f"SELECT sample, y_pred FROM predictions WHERE run_id = '{run_id}' ORDER BY sample",
                       max_rows=None).rows
    return [str(folder / split.paths[s]) for s, _ in rows], [p for _, p in rows]


# ---- the classifiers' saved state --------------------------------------------------------------------

@pytest.mark.parametrize("name", CLASSIFIERS + ["nearest-mean"])
@pytest.mark.parametrize("n_classes", [2, 4])
def test_every_builtin_classifier_round_trips_its_state(name, n_classes):
    if name not in registry.list_classifiers():
        pytest.skip(f"{name} is not installed")
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 3, (n_classes, 12))
    y = rng.integers(0, n_classes, 300)
    X = (centres[y] + rng.normal(0, 1, (300, 12))).astype(np.float32)
    params = {"epochs": 5} if name == "fc-head" else {}
    clf = registry.create_classifier(name, **params).fit(X[:200], y[:200])
    settings, arrays = clf.save_state()
    settings = json.loads(json.dumps(settings))  # JSON round trip: what the model file holds
    back = type(clf).load_state(settings, {k: np.array(v) for k, v in arrays.items()})
    assert np.array_equal(back.predict(X[200:]), clf.predict(X[200:]))
    assert np.allclose(back.decision_function(X[200:]), clf.decision_function(X[200:]))
    with torch.no_grad():
        scores = clf.scores_module()(torch.from_numpy(X[200:])).numpy()
    assert scores.shape == (100, n_classes)
    assert np.mean(clf.classes_[scores.argmax(1)] == clf.predict(X[200:])) >= 0.99


# ---- saved with the run, loaded back ----------------------------------------------------------------------

@pytest.mark.parametrize("classifier, mode", [("ridge", "pooled"), ("logistic", "fne"), ("kernel", "pooled")])
def test_a_top_tuned_model_predicts_its_own_test_images_as_the_run_did(tmp_path, folder, classifier, mode):
    store = Store(tmp_path / "s.duckdb")
    run_id = top_tune(store, folder, classifier, feature_mode=mode)
    row = store.get_run(run_id)
    assert row["model_bytes"] == files.size(run_dir(store.path, run_id) / "model") > 0
    manifest = json.loads((run_dir(store.path, run_id) / "model" / "model.json").read_text())
    assert manifest["backbone"]["weights_saved"]  # random weights: the plugin cannot rebuild them
    paths, stored = stored_predictions(store, folder, run_id)
    model = load_model(run_id, store=store)
    assert model.classes == [str(i) for i in range(5)] and model.input_size == 16
    assert model.predict(paths) == [model.classes[p] for p in stored]
    scores = model.predict_scores(paths)
    assert scores.shape == (len(paths), 5)


def test_a_fine_tuned_model_predicts_its_own_test_images_as_the_run_did(tmp_path, folder):
    store = Store(tmp_path / "s.duckdb")
    spec = RunSpec("fine-tune", "tiny", "imagefolder", None, {**TINY, "dataset.path": str(folder), "epochs": 1})
    run_id, _ = run(spec, store)
    paths, stored = stored_predictions(store, folder, run_id)
    model = load_model(run_id, store=store)
    assert model.method == "fine-tune" and model.predict(paths) == [model.classes[p] for p in stored]
    assert np.allclose(model.predict_scores(paths).sum(1), 1.0)  # a softmax per image


def test_reproducible_weights_stay_with_the_plugin_and_a_changed_digest_is_refused(tmp_path, folder, monkeypatch):
    store = Store(tmp_path / "s.duckdb")
    run_id = top_tune(store, folder, backbone="seeded-tiny")
    manifest = json.loads((run_dir(store.path, run_id) / "model" / "model.json").read_text())
    assert not manifest["backbone"]["weights_saved"]
    assert load_model(run_id, store=store).predict(str(folder / "0" / "0.png"))
    monkeypatch.setattr(SeededTiny, "digest", "other-weights")
    with pytest.raises(ModelError, match="now has weights other-weights-0, but this model was trained on seeded"):
        load_model(run_id, store=store)


def test_inputs_may_be_paths_folders_globs_pil_images_arrays_or_tensors(tmp_path, folder):
    store = Store(tmp_path / "s.duckdb")
    model = load_model(top_tune(store, folder), store=store)
    path = folder / "3" / "2.png"
    image = Image.open(path).convert("RGB")
    array = np.asarray(image)
    tensor = torch.from_numpy(array.copy()).permute(2, 0, 1).float() / 255
    expected = model.predict(str(path))
    assert model.predict([image, array, tensor, path]) == expected * 4
    assert len(model.predict(str(folder))) == 80 and len(model.predict(str(folder / "*" / "1.png"))) == 5


def test_a_classifier_without_saved_state_still_runs_and_says_why(tmp_path, folder):
    from sklearn.neighbors import KNeighborsClassifier

    @registry.register_classifier("knn-test")
    class Knn(KNeighborsClassifier):
        api_version, description, params = 1, "k nearest neighbours", {}

        def __init__(self):
            super().__init__(n_neighbors=3)

        def fit(self, X, y):
            super().fit(X, y)
            self.n_trained_params_ = 0
            return self

    try:
        store = Store(tmp_path / "s.duckdb")
        row = store.get_run(top_tune(store, folder, "knn-test"))
    finally:
        registry.unregister("classifier", "knn-test")
    assert row["status"] == "finished" and row["model_bytes"] is None
    assert "no save_state()/load_state()" in row["info"]["model"]


# ---- one file: ONNX and TorchScript --------------------------------------------------------------------------

@pytest.mark.parametrize("classifier, mode", [("kernel", "pooled"), ("logistic", "fne"), ("fc-head", "pooled")])
def test_the_exported_onnx_file_agrees_with_pytorch_and_carries_its_classes(tmp_path, folder, classifier, mode):
    onnx = pytest.importorskip("onnx")
    store = Store(tmp_path / "s.duckdb")
    # A float32 run: the exported file computes in float32, so the run's own predictions compare exactly.
    run_id = top_tune(store, folder, classifier, feature_mode=mode, precision="fp32",
                      **({"classifier.epochs": 5} if classifier == "fc-head" else {}))
    model = load_model(run_id, store=store, device="cpu")
    path = exporter.export(model, tmp_path / "model.onnx", "onnx")
    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert json.loads(meta["classes"]) == model.classes and meta["input_size"] == "16"
    paths, stored = stored_predictions(store, folder, run_id)
    found = exporter.agreement(model, path, paths, "onnx")
    assert found["images"] == len(paths) and found["agreement"] == 1.0 and found["max_score_difference"] < 1e-3
    scores = exporter.onnx_scores(path, exporter.input_batch(model, paths))
    assert np.mean(scores.argmax(1) == np.asarray(stored)) >= 0.95  # against the run itself (float32 vs its path)


def test_torchscript_and_half_precision_exports(tmp_path, folder):
    store = Store(tmp_path / "s.duckdb")
    run_id = top_tune(store, folder, "ridge")
    model = load_model(run_id, store=store, device="cpu")
    path = exporter.export(model, tmp_path / "model.pt", "torchscript")
    paths, _ = stored_predictions(store, folder, run_id)
    assert exporter.agreement(model, path, paths, "torchscript")["agreement"] == 1.0
    half = exporter.export(model, tmp_path / "half.pt", "torchscript", half=True)
    assert {p.dtype for p in torch.jit.load(str(half)).parameters()} == {torch.float16}
    assert exporter.agreement(model, half, paths, "torchscript", half=True)["agreement"] >= 0.95
    if importlib.util.find_spec("onnxruntime"):  # float16 weights in ONNX too, float32 in and out
        half_onnx = exporter.export(model, tmp_path / "half.onnx", "onnx", half=True)
        assert exporter.onnx_scores(half_onnx, exporter.input_batch(model, paths[:4])).dtype == np.float32
        assert exporter.agreement(model, half_onnx, paths, "onnx", half=True)["agreement"] >= 0.95


# ---- the command line, and what it refuses ------------------------------------------------------------------

def test_predict_prints_csv_and_names_unreadable_files(tmp_path, folder):
    store = Store(tmp_path / "s.duckdb")
    run_id = top_tune(store, folder)
    (tmp_path / "new").mkdir()
    Image.open(folder / "2" / "0.png").save(tmp_path / "new" / "a.png")
    (tmp_path / "new" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not an image")
    res = cli("predict", run_id, tmp_path / "new", "--format", "csv", "--top-k", "2", "--store", store.path)
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert lines[0] == "path,label,score,label_2,score_2" and lines[1].startswith(str(tmp_path / "new" / "a.png"))
    assert "skipped" in res.stderr and "broken.png" in res.stderr and len(lines) == 2
    res = cli("predict", run_id, tmp_path / "new" / "broken.png", "--store", store.path)
    assert res.exit_code == 2 and "no image could be read" in res.stderr


def test_disk_usage_is_listed(tmp_path, folder):
    store = Store(tmp_path / "s.duckdb")
    run_id = top_tune(store, folder)
    res = cli("runs", "--disk", "--store", store.path)
    size = store.get_run(run_id)["model_bytes"]
    assert res.exit_code == 0 and f"{size / 2**20:.1f} MB" in res.stdout and "beside the store" in res.stdout


def _corrupt(store, run_id):
    tensors = run_dir(store.path, run_id) / "model" / "classifier.safetensors"
    tensors.write_bytes(tensors.read_bytes()[:40])


@pytest.mark.parametrize("case, message", [
    ("unknown", "no run with id"),
    ("failed", "only a finished run has a model"),
    ("not saved", "saved no model"),
    ("corrupt", "is missing or damaged"),
    ("cluster", "has no model to predict with"),
])
def test_predict_and_export_refuse_with_one_line_and_write_nothing(tmp_path, folder, case, message):
    store = Store(tmp_path / "s.duckdb")
    if case == "failed":
        run_id = store.start_run({"method": "top-tune", "dataset": "digits"})
        store.fail_run(run_id, "boom")
    elif case == "not saved":
        run_id = top_tune(store, folder, save_model=False)
    elif case == "cluster":
        run_id, _ = run(RunSpec("cluster", "tiny", "imagefolder", None,
                                {**TINY, "dataset.path": str(folder), "pipeline": "kmeans"}), store)
    elif case == "corrupt":
        run_id = top_tune(store, folder)
        _corrupt(store, run_id)
    else:
        store.create()  # the store exists, the run does not
        run_id = "nope"
    for args in (("predict", run_id, folder / "0" / "0.png"), ("export", run_id, "-o", tmp_path / "m.onnx")):
        res = cli(*args, "--store", store.path)
        assert res.exit_code == 2, res.output
        assert message in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "m.onnx").exists()


def test_export_into_a_missing_folder_is_refused_before_anything_loads(tmp_path):
    res = cli("export", "anything", "-o", tmp_path / "missing" / "m.onnx", "--store", tmp_path / "s.duckdb")
    assert res.exit_code == 2 and "the folder" in res.stderr and "does not exist" in res.stderr
    assert not (tmp_path / "s.duckdb").exists()
