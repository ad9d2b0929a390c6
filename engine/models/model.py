"""A run's model, loaded back: ``load_model(run_id, store=...)`` or ``load_model(folder)``.

``model.predict(images)`` gives class names, ``model.predict_scores(images)`` one row of class scores per
image (probabilities where the classifier gives them, else its decision scores). Images are paths,
folders, globs, PIL images, numpy arrays or tensors. Predictions go through the same extraction and the
same classifier code as the run, so a run's own test images get its stored predictions back.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import registry
from ..errors import ModelError, ToptuneError
from ..features import modes
from ..features.extract import build_transform, extract
from ..measure.precision import from_record
from ..progress import Progress
from . import files
from .images import Inputs
from .save import network

METHODS = ("top-tune", "fine-tune")


@dataclass
class Predictions:
    """What a model made of some images: row i is image ``names[i]``; ``skipped`` lists (name, why)."""

    names: list[str]
    labels: list[str]
    scores: np.ndarray  # (n, len(columns))
    columns: list[str]  # the class name of each score column
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def top(self, k: int) -> list[list[tuple[str, float]]]:
        """The k best (class, score) of each image, best first."""
        order = np.argsort(-self.scores, axis=1, kind="stable")[:, :k]
        return [[(self.columns[j], float(row[j])) for j in cols] for row, cols in zip(self.scores, order)]


class Model:
    """Common to both kinds: the classes, the input size and how images become a batch."""

    def __init__(self, saved: files.ModelFiles, device: str = "cpu"):
        self.saved, self.manifest, self.device = saved, saved.manifest, device
        self.classes: list[str] = saved.classes
        self.input_size: int = int(self.manifest["input_size"])
        self.method: str = self.manifest["method"]
        self.pre = dict(self.manifest["preprocessing"])
        # The precision and layout the run's network ran in (None: a model saved before they were recorded).
        self.compute = self.manifest.get("compute")

    def __repr__(self) -> str:
        return f"<{self.method} model: {self.manifest['backbone']['name']}, {len(self.classes)} classes>"

    def _outputs(self, images, progress: Progress | None = None):
        """(inputs, FeatureSet of the module's outputs) for ``images``; unreadable ones are skipped."""
        inputs = Inputs(images)
        if not len(inputs):
            raise ModelError("no image to predict")
        try:
            out = extract(self.module, inputs, self.pre, device=self.device, batch_size=self.manifest["batch_size"],
                          progress=progress, stage="predict", transform=build_transform(self.pre),
                          precision=from_record(self.compute, self.device, self.module))
        except ToptuneError as exc:
            raise ModelError(f"no image could be read ({exc})") from None
        return inputs, out

    def predictions(self, images, progress: Progress | None = None) -> Predictions:
        inputs, out = self._outputs(images, progress)
        labels, scores, columns = self._decide(out.features)
        skipped = [(inputs.names[i], why) for i, why in out.skipped]
        return Predictions([inputs.names[i] for i in out.indices], labels, scores, columns, skipped)

    def predict(self, images) -> list[str]:
        """The class name of every readable image (unreadable ones are left out)."""
        return self.predictions(images).labels

    def predict_scores(self, images) -> np.ndarray:
        return self.predictions(images).scores


class TopTunedModel(Model):
    """Frozen backbone features (in the run's feature mode) and the classifier fitted on them."""

    def __init__(self, saved: files.ModelFiles, device: str = "cpu"):
        super().__init__(saved, device)
        backbone = _backbone(self.manifest["backbone"])
        self.mode = self.manifest.get("feature_mode", modes.POOLED)
        self.module = modes.feature_module(backbone, self.manifest["backbone"]["name"], {"feature_mode": self.mode})
        if self.manifest["backbone"]["weights_saved"]:
            _load_weights(getattr(self.module, "body", self.module), saved.tensors["backbone"], "backbone")
        self.mode_state = saved.tensors.get("features", {})
        self.classifier = _classifier(self.manifest["classifier"], saved.tensors["classifier"])

    def _decide(self, features: np.ndarray):
        x = modes.transform(self.mode, features, self.mode_state)
        clf = self.classifier
        label_ids = np.asarray(clf.predict(x))
        if callable(getattr(clf, "predict_proba", None)):
            scores = np.asarray(clf.predict_proba(x), dtype=np.float64)
        else:
            scores = np.asarray(clf.decision_function(x), dtype=np.float64)
            if scores.ndim == 1:  # scikit-learn's binary convention: one score, positive for classes_[1]
                scores = np.column_stack([-scores / 2, scores / 2])
        columns = [self.classes[int(c)] for c in clf.classes_]
        return [self.classes[int(c)] for c in label_ids], scores, columns


class FineTunedModel(Model):
    """The fine-tuned network: the backbone's module with its trained linear head."""

    def __init__(self, saved: files.ModelFiles, device: str = "cpu"):
        super().__init__(saved, device)
        backbone = _backbone(self.manifest["backbone"], check_digest=False)
        self.module = network(backbone.build(), self.manifest["feature_dim"], len(self.classes))
        _load_weights(self.module, saved.tensors["network"], "network")
        self.module.eval()

    def _decide(self, logits: np.ndarray):
        ids = logits.argmax(1)
        return [self.classes[int(i)] for i in ids], _softmax(logits), list(self.classes)


def _softmax(x: np.ndarray) -> np.ndarray:
    z = np.exp(x - x.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def _backbone(entry: dict, check_digest: bool = True):
    """The backbone plugin as the run created it; its weights must still be the ones the model was trained on
    unless they travel with the model."""
    params = dict(entry["params"])
    weights = params.get("weights")
    if entry["weights_saved"] and isinstance(weights, str) and weights not in ("none", "timm", "bundled") \
            and not Path(weights).expanduser().is_file():
        params["weights"] = "none"  # the user's file is gone, but its tensors are in the model
    try:
        backbone = registry.create("backbone", entry["name"], **params)
    except ToptuneError as exc:
        raise ModelError(f"the model's backbone cannot be created: {exc}") from None
    if check_digest and not entry["weights_saved"] and backbone.weights_digest() != entry["weights_digest"]:
        raise ModelError(f"backbone '{entry['name']}' now has weights {backbone.weights_digest()}, but this model was "
                         f"trained on {entry['weights_digest']}: install those weights again, or train a new model")
    return backbone


def _load_weights(module, tensors: dict[str, np.ndarray], what: str) -> None:
    import torch

    try:
        module.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in tensors.items()}, strict=True)
    except RuntimeError as exc:
        raise ModelError(f"the saved {what} weights do not fit the network the plugin builds now: "
                         f"{str(exc).splitlines()[0]}") from None


def _classifier(entry: dict, arrays: dict[str, np.ndarray]):
    try:
        cls = registry.load("classifier", entry["name"])
    except ToptuneError as exc:
        raise ModelError(f"the model's classifier cannot be loaded: {exc}") from None
    if not callable(getattr(cls, "load_state", None)):
        raise ModelError(f"classifier '{entry['name']}' no longer has load_state(), so its saved state cannot be read")
    supported = int(getattr(cls, "state_version", 1))
    if int(entry["state_version"]) > supported:
        raise ModelError(f"classifier '{entry['name']}' state v{entry['state_version']} is newer than the installed "
                         f"plugin reads (v{supported}); upgrade the plugin")
    try:
        return cls.load_state(entry["settings"], arrays)
    except (KeyError, ValueError, TypeError) as exc:
        raise ModelError(f"the saved state of classifier '{entry['name']}' is damaged: "
                         f"{type(exc).__name__}: {exc}") from None


def _run_folder(run_id: str, store) -> Path:
    """The model folder of a finished top-tuning or fine-tuning run, or a ModelError saying why there is none."""
    from ..store import Store

    store = store if isinstance(store, Store) else Store(store)
    if not store.path.exists():
        raise ModelError(f"no store at {store.path}")
    run = store.get_run(run_id)
    if run["method"] not in METHODS:
        raise ModelError(f"run {run_id} is a {run['method']} run, which has no model to predict with")
    if run["status"] != "finished":
        raise ModelError(f"run {run_id} is {run['status']}: only a finished run has a model")
    from ..store.artifacts import model_folder

    folder = model_folder(store.path, run_id)
    if not folder.exists():
        why = (run.get("info") or {}).get("model") or "it was run with save_model=false or before models were saved"
        raise ModelError(f"run {run_id} saved no model: {why}")
    return folder


def load_model(source: str | os.PathLike, store=None, device: str = "auto") -> Model:
    """The model of a run (its id, in ``store`` or the default store) or of a model folder."""
    from ..measure.device import pick_device

    path = Path(source)
    folder = path if (path / files.MANIFEST).exists() else _run_folder(str(source), store)
    saved = files.read(folder)
    kind = {"top-tune": TopTunedModel, "fine-tune": FineTunedModel}.get(saved.manifest.get("method"))
    if kind is None:
        raise ModelError(f"{folder} holds a model of an unknown method {saved.manifest.get('method')!r}")
    return kind(saved, pick_device(device))
