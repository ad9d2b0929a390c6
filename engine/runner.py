"""Running a spec: ``execute`` computes a RunResult; ``run`` also records it in a store.

``execute`` knows nothing about stores, CLIs or workers, so any caller (CLI, dashboard job, Ray task)
can run a spec and decide where the result goes. ``run`` is the single-process recording path:
validate first (bad input writes nothing), insert the run as running, then mark it finished, failed
or interrupted.
"""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass, field

import numpy as np

from . import registry
from .device import PeakMemory, pick_device
from .errors import DatasetError, ToptuneError
from .features import FeatureCache, FeatureSet, cache_key, extract
from .progress import Progress
from .spec import ResolvedSpec, RunSpec, resolve
from .store import Store


@dataclass
class RunResult:
    accuracy: float
    train_time_s: float
    extract_time_s: float
    fit_time_s: float
    predict_time_s: float
    peak_memory_mb: float
    trained_params: int
    n_train: int
    n_test: int
    n_classes: int
    feature_dim: int
    cache_hit: bool
    device: str
    pretrain_source: str | None
    params: dict
    info: dict
    y_true: np.ndarray = field(repr=False)
    y_pred: np.ndarray = field(repr=False)
    samples: np.ndarray = field(repr=False)

    def record(self) -> dict:
        """The store's columns for this result."""
        skip = {"y_true", "y_pred", "samples"}
        return {k: v for k, v in self.__dict__.items() if k not in skip}


def _fixed_subset(labels: np.ndarray, limit: int | None) -> np.ndarray | None:
    """A stratified subset that depends only on the split, so every run with the same limit shares it."""
    if limit is None or limit >= len(labels):
        return None
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(labels))
    n_classes = len(np.unique(labels))
    stratify = labels if limit >= n_classes else None
    keep, _ = train_test_split(idx, train_size=limit, stratify=stratify, random_state=0)
    return np.sort(keep)


def _dataset_info(splits) -> dict:
    """A dataset's metadata: #train, #test, #classes, class names, mean image size and the plugin's extras."""
    info = {"n_train": len(splits.train), "n_test": len(splits.test), "n_classes": len(splits.classes),
            **splits.info, "classes": list(map(str, splits.classes))}
    info.setdefault("mean_image_size", None)
    return info


def describe_dataset(name: str, params: dict | None = None) -> dict:
    """Load a dataset (no feature extraction) and return its metadata."""
    values = registry.resolve_params("dataset", name, params or {})
    return _dataset_info(registry.create("dataset", name, **values).load())


class _Features:
    """Gets features for one split from the cache, or extracts them (building the backbone once)."""

    def __init__(self, rs: ResolvedSpec, backbone, dataset, cache: FeatureCache | None, device: str,
                 progress: Progress):
        self.rs, self.backbone, self.dataset = rs, backbone, dataset
        self.cache, self.device, self.progress = cache, device, progress
        self._module = None

    def key(self, split_name: str, subset) -> str:
        return cache_key(
            backbone=self.rs.spec.backbone, backbone_params=self.rs.params["backbone"],
            weights=self.backbone.weights_digest(), dataset=self.rs.spec.dataset,
            data=self.dataset.fingerprint(), split=split_name,
            subset=None if subset is None else subset.tolist(), pre=self.backbone.preprocessing, mode="pooled",
        )

    def get(self, split_name: str, split, subset) -> FeatureSet:
        key = self.key(split_name, subset) if self.cache else None
        if key and (found := self.cache.get(key)) is not None:
            self.progress.note(f"{split_name} features: {len(found.labels)} from the cache")
            return found
        if self._module is None:
            self._module = self.backbone.build()
        run = self.rs.params["run"]
        fs = extract(self._module, split, self.backbone.preprocessing, device=self.device,
                     batch_size=run["batch_size"], num_workers=run["num_workers"], subset=subset,
                     progress=self.progress, stage=f"extract {split_name}")
        if fs.skipped:
            self.progress.note(f"{split_name}: skipped {len(fs.skipped)} unreadable image(s), "
                               f"e.g. sample {fs.skipped[0][0]}: {fs.skipped[0][1]}")
        if key:
            self.cache.put(key, fs, meta={"spec": self.rs.spec.to_dict(), "split": split_name})
        return fs


def _chosen(clf, schema: dict) -> dict:
    """Values a classifier picked itself (e.g. sigma from the median heuristic), by the ``<param>_`` rule."""
    out = {}
    for name in schema:
        value = getattr(clf, f"{name}_", None)
        if isinstance(value, (int, float, str, bool, np.integer, np.floating)):
            out[name] = value.item() if isinstance(value, np.generic) else value
    return out


def _top_tune(rs: ResolvedSpec, cache: FeatureCache | None, device: str, progress: Progress) -> dict:
    spec, run = rs.spec, rs.params["run"]
    dataset = registry.create("dataset", spec.dataset, **rs.params["dataset"])
    backbone = registry.create("backbone", spec.backbone, **rs.params["backbone"])
    splits = dataset.load()
    info = _dataset_info(splits)
    feats = _Features(rs, backbone, dataset, cache if run["cache"] else None, device, progress)
    train = feats.get("train", splits.train, _fixed_subset(np.asarray(splits.train.labels), run["max_train"]))
    test = feats.get("test", splits.test, _fixed_subset(np.asarray(splits.test.labels), run["max_test"]))
    if len(np.unique(train.labels)) < 2:
        raise DatasetError(f"dataset '{spec.dataset}': fewer than 2 classes have readable training images")

    clf = registry.create("classifier", spec.classifier, **rs.params["classifier"])
    with progress.stage(f"fit {spec.classifier}"):
        t0 = time.perf_counter()
        clf.fit(train.features, train.labels)
        fit_time = time.perf_counter() - t0
    t0 = time.perf_counter()
    y_pred = np.asarray(clf.predict(test.features))
    predict_time = time.perf_counter() - t0

    info.update(skipped_train=len(train.skipped), skipped_test=len(test.skipped),
                test_extract_time_s=test.extract_time_s, classifier_predict_time_s=predict_time,
                preprocessing=backbone.preprocessing, weights_digest=backbone.weights_digest())
    params = {ns: dict(values) for ns, values in rs.params.items()}
    params["classifier"].update(_chosen(clf, type(clf).params))
    return dict(
        accuracy=float(np.mean(y_pred == test.labels)),
        train_time_s=train.extract_time_s + fit_time,
        extract_time_s=train.extract_time_s,
        fit_time_s=fit_time,
        predict_time_s=test.extract_time_s + predict_time,
        trained_params=int(getattr(clf, "n_trained_params_", 0)),
        n_train=len(train.labels), n_test=len(test.labels), n_classes=len(splits.classes),
        feature_dim=int(train.features.shape[1]), cache_hit=train.cache_hit and test.cache_hit,
        pretrain_source=getattr(backbone, "pretrain_source", None), params=params, info=info,
        y_true=test.labels, y_pred=y_pred, samples=test.indices,
    )


METHODS = {"top-tune": _top_tune}


def _seed_everything(seed: int) -> None:
    import random

    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def execute(spec: RunSpec | ResolvedSpec, *, cache: FeatureCache | None = None,
            progress: Progress | None = None) -> RunResult:
    """Run a spec and return its result; touches no store."""
    rs = spec if isinstance(spec, ResolvedSpec) else resolve(spec)
    progress = progress or Progress()
    device = pick_device(rs.params["run"]["device"])
    _seed_everything(rs.spec.seed)
    memory = PeakMemory(device)
    with memory.track():
        out = METHODS[rs.method](rs, cache if cache is not None else FeatureCache(), device, progress)
    return RunResult(peak_memory_mb=memory.peak_mb, device=device, **out)


def start_record(rs: ResolvedSpec) -> dict:
    spec = rs.spec
    return {"method": spec.method, "backbone": spec.backbone, "classifier": spec.classifier,
            "dataset": spec.dataset, "seed": spec.seed, "params": rs.params, "spec": spec.to_dict(),
            "device": pick_device(rs.params["run"]["device"]), "info": {"python": platform.python_version()}}


def run(spec: RunSpec, store: Store | None = None, *, cache: FeatureCache | None = None,
        progress: Progress | None = None) -> tuple[str, RunResult]:
    """Validate, record as running, execute, record the outcome. Returns (run id, result)."""
    rs = resolve(spec)  # bad names or params: raise before anything is written
    store = store or Store()
    run_id = store.start_run(start_record(rs))
    try:
        result = execute(rs, cache=cache, progress=progress)
    except KeyboardInterrupt:
        store.interrupt_run(run_id)
        raise
    except ToptuneError as exc:
        store.fail_run(run_id, str(exc))
        raise
    except BaseException as exc:
        store.fail_run(run_id, f"{type(exc).__name__}: {exc}")
        raise
    store.finish_run(run_id, result.record(), y_true=result.y_true, y_pred=result.y_pred, samples=result.samples)
    return run_id, result
