"""Smoke tests for installed plugins: what ``toptune plugins check`` and the dashboard run.

Each plugin is loaded, created with its ``check_params`` (values chosen so the check needs no
download; see ``protocols``) plus any the caller gives, and exercised on tiny inputs the way a run
would use it. Nothing here raises for a plugin's fault: every plugin ends as ``pass``, ``fail`` or
``skip`` with a reason, so one broken plugin never stops the others from being checked.

A dataset that raises ``DatasetError`` (missing files, no download, no path given) is skipped as
"needs data", because that is the documented way to say the data is absent rather than the code wrong.
"""

from __future__ import annotations

import difflib
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from . import registry
from .errors import DatasetError, ParamError, ToptuneError, UnknownPluginError

PASS, FAIL, SKIP = "pass", "fail", "skip"


@dataclass
class CheckResult:
    kind: str
    name: str
    distribution: str
    version: str
    status: str  # PASS | FAIL | SKIP
    reason: str = ""  # why it failed or was skipped; empty on pass
    details: dict = field(default_factory=dict)  # what the smoke test saw, e.g. feature_dim
    seconds: float = 0.0

    @property
    def failed(self) -> bool:
        return self.status == FAIL

    def to_dict(self) -> dict:
        return asdict(self)


class _Failed(Exception):
    pass


class _Skipped(Exception):
    pass


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise _Failed(message)


@contextmanager
def _stage(what: str) -> Iterator[None]:
    """Report an unexpected exception of plugin code as a failure of the step that raised it."""
    try:
        yield
    except (_Failed, _Skipped, KeyboardInterrupt):
        raise
    except Exception as exc:
        raise _Failed(f"{what} raised {type(exc).__name__}: {exc}") from exc


def _tiny_images(n: int, seed: int = 0) -> list:
    """Noise images of an odd size, so every backbone's resize and crop really run."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 256, (37, 29, 3), dtype=np.uint8)) for _ in range(n)]


def smoke_backbone(backbone: Any) -> dict:
    """A 2-image batch through the built module: (2, d) finite features, the same on a second pass."""
    import torch

    from .features.extract import build_transform

    with _stage("weights_digest()"):
        digest = backbone.weights_digest()
        _require(isinstance(digest, str) and digest != "",
                 f"weights_digest() must return a non-empty str, got {digest!r}")
        _require(backbone.weights_digest() == digest, "weights_digest() changed between two calls")
    pre = backbone.preprocessing
    with _stage("build()"):
        module = backbone.build()
    _require(isinstance(module, torch.nn.Module), f"build() must return a torch.nn.Module, got {type(module).__name__}")
    _require(not module.training, "build() must return the module in eval mode (call .eval())")
    with _stage("preprocessing the test images"):
        batch = torch.stack([build_transform(pre)(img) for img in _tiny_images(2)])
    with _stage("forward pass"), torch.inference_mode():
        out, again = module(batch), module(batch)
    _require(isinstance(out, torch.Tensor), f"forward pass must return a tensor, got {type(out).__name__}")
    shape = tuple(out.shape)
    _require(len(shape) == 2 and shape[0] == 2 and shape[1] >= 1,
             f"forward pass of a (2, 3, {pre['input_size']}, {pre['input_size']}) batch returned shape {shape}; "
             "a backbone must return pooled features of shape (batch, d) = (2, d)")
    _require(bool(torch.isfinite(out).all()), "forward pass returned NaN or infinite features")
    _require(torch.allclose(out, again, rtol=1e-4, atol=1e-5),
             "forward pass is not deterministic (same batch, different features); is dropout active?")
    return {"feature_dim": shape[1], "input_size": pre["input_size"], "pretrain_source": backbone.pretrain_source,
            "weights_digest": digest}


def _toy_problem(n_classes: int = 3, per_class: int = 8, dim: int = 6, seed: int = 0):
    """Well-separated Gaussian blobs as float32 features, split 3:1, labels 0..n_classes-1."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 4, (n_classes, dim))
    y = np.repeat(np.arange(n_classes), per_class)
    X = (centres[y] + rng.normal(0, 1, (len(y), dim))).astype(np.float32)
    test = np.arange(len(y)) % 4 == 0
    return X[~test], y[~test], X[test], y[test]


def smoke_classifier(clf: Any) -> dict:
    """fit/predict/score on toy features: labels of the right length, all among the training classes."""
    X, y, Xt, yt = _toy_problem()
    with _stage("fit()"):
        fitted = clf.fit(X, y)
    _require(fitted is clf, "fit() must return self")
    classes = np.asarray(getattr(clf, "classes_", []))
    _require(np.array_equal(np.sort(classes), np.unique(y)),
             f"after fit(), classes_ must hold the training labels {np.unique(y).tolist()}, got {classes.tolist()}")
    n_params = getattr(clf, "n_trained_params_", None)
    _require(isinstance(n_params, (int, np.integer)) and not isinstance(n_params, bool) and n_params >= 0,
             f"after fit(), n_trained_params_ must be a non-negative int, got {n_params!r}")
    with _stage("predict()"):
        pred = np.asarray(clf.predict(Xt))
    _require(pred.shape == (len(Xt),),
             f"predict() on {len(Xt)} rows returned shape {pred.shape}, expected ({len(Xt)},)")
    strays = sorted(set(pred.tolist()) - set(np.unique(y).tolist()))
    _require(not strays, f"predict() returned labels that are not classes: {strays[:5]}")
    with _stage("score()"):
        score = clf.score(Xt, yt)
    _require(isinstance(score, (float, np.floating)) and 0.0 <= score <= 1.0,
             f"score() must return an accuracy in [0, 1], got {score!r}")
    return {"n_trained_params": int(n_params), "toy_accuracy": round(float(score), 4)}


def _check_split(which: str, split: Any, n_classes: int) -> np.ndarray:
    with _stage(f"{which} split"):
        n = len(split)
        labels = np.asarray(split.labels)
    _require(n > 0, f"load() returned an empty {which} split")
    _require(labels.shape == (n,), f"{which}.labels has shape {labels.shape}, expected ({n},) like len({which})")
    _require(np.issubdtype(labels.dtype, np.integer), f"{which}.labels must be integers, got dtype {labels.dtype}")
    _require(labels.min() >= 0 and labels.max() < n_classes,
             f"{which}.labels must lie in [0, {n_classes}) (one per class name), got {labels.min()}..{labels.max()}")
    return labels


def smoke_dataset(dataset: Any) -> dict:
    """load() and one sample: non-empty splits, labels matching the classes, a PIL image, a stable fingerprint."""
    from PIL import Image

    try:
        with _stage("load()"):
            splits = dataset.load()
    except _Failed as exc:
        if isinstance(exc.__cause__, DatasetError):
            raise _Skipped(f"needs data ({exc.__cause__})") from exc
        raise
    with _stage("reading the splits"):
        train, test, classes, info = splits.train, splits.test, list(splits.classes), splits.info
    _require(len(classes) >= 2, f"load() must name at least 2 classes, got {len(classes)}")
    _require(isinstance(info, dict), f"DatasetSplits.info must be a dict, got {type(info).__name__}")
    labels = _check_split("train", train, len(classes))
    _check_split("test", test, len(classes))
    with _stage("train[0]"):
        image, label = train[0]
    _require(isinstance(image, Image.Image),
             f"train[0] must return (PIL.Image.Image, int), got a {type(image).__name__}")
    _require(int(label) == int(labels[0]), f"train[0] has label {label} but train.labels[0] is {labels[0]}")
    with _stage("fingerprint()"):
        fp = dataset.fingerprint()
        _require(isinstance(fp, str) and fp != "", f"fingerprint() must return a non-empty str, got {fp!r}")
        _require(dataset.fingerprint() == fp, "fingerprint() changed between two calls on the same data")
    return {"n_train": len(train), "n_test": len(test), "n_classes": len(classes),
            "sample_size": [image.height, image.width]}


SMOKE: dict[str, Callable[[Any], dict]] = {
    "backbone": smoke_backbone, "classifier": smoke_classifier, "dataset": smoke_dataset,
}


def _create(kind: str, name: str, params: dict) -> Any:
    cls = registry.load(kind, name)
    values = {**getattr(cls, "check_params", {}), **params}
    try:
        return registry.create(kind, name, **values)
    except DatasetError as exc:
        raise _Skipped(f"needs data ({exc})") from exc
    except ToptuneError:
        raise
    except Exception as exc:  # a plugin's constructor is third-party code
        raise _Failed(f"creating it raised {type(exc).__name__}: {exc}") from exc


def check_one(info: registry.PluginInfo, params: dict | None = None, name: str | None = None) -> CheckResult:
    """Smoke-test one registration; ``name`` may carry a variant (``timm:resnet18``)."""
    result = CheckResult(info.kind, name or info.name, info.distribution, info.version, PASS)
    start = time.perf_counter()
    try:
        plugin = _create(info.kind, result.name, dict(params or {}))
        result.details = SMOKE[info.kind](plugin)
    except _Skipped as exc:
        result.status, result.reason = SKIP, str(exc)
    except (_Failed, ToptuneError) as exc:
        result.status, result.reason = FAIL, str(exc)
    result.seconds = round(time.perf_counter() - start, 3)
    return result


def _select(name: str, infos: list[registry.PluginInfo], kind: str | None) -> list[registry.PluginInfo]:
    family, _ = registry.split_name(name)
    chosen = [i for i in infos if i.name == family]
    if not chosen:
        known = sorted({i.name for i in infos})
        close = difflib.get_close_matches(family, known, n=1, cutoff=0.5)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise UnknownPluginError(f"no {kind or 'plugin'} named '{family}'{hint}")
    return chosen


def check_plugins(names: str | Sequence[str] | None = None, kind: str | None = None,
                  params: dict | None = None) -> list[CheckResult]:
    """Smoke-test every plugin, or the ones named (of any kind unless ``kind`` is given).

    ``params`` go to the one plugin named; unknown names raise before anything is checked.
    """
    names = [names] if isinstance(names, str) else list(names or [])
    if params and len(names) != 1:
        raise ParamError("parameters for a check need exactly one plugin name (toptune plugins check NAME --param ...)")
    infos = registry.discover(kind)
    if not names:
        return [check_one(info) for info in infos]
    chosen = [(info, name) for name in names for info in _select(name, infos, kind)]
    return [check_one(info, params, name) for info, name in chosen]
