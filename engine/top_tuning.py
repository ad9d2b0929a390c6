"""Top-tuning: features from a frozen backbone (cached), then a classifier plugin fitted on them."""

from __future__ import annotations

import time

import numpy as np

from . import registry
from .data import dataset_info, fixed_subset, preprocessing
from .errors import DatasetError
from .feature_modes import cache_parts, feature_module, finish
from .features import FeatureCache, FeatureSet, RecordingCache, build_transform, cache_key, extract
from .progress import Progress, reporting
from .shift import shifted
from .spec import ResolvedSpec


class _Features:
    """Gets features for one split from the cache, or extracts them (building the backbone once)."""

    def __init__(self, rs: ResolvedSpec, backbone, dataset, cache: FeatureCache | None, device: str,
                 progress: Progress):
        self.rs, self.backbone, self.dataset = rs, backbone, dataset
        self.cache, self.device, self.progress = cache, device, progress
        self.pre = preprocessing(backbone, rs.params["run"]["image_size"])
        self._module = None

    def key(self, split_name: str, subset) -> str:
        return cache_key(
            backbone=self.rs.spec.backbone, backbone_params=self.rs.params["backbone"],
            weights=self.backbone.weights_digest(), dataset=self.rs.spec.dataset,
            data=self.dataset.fingerprint(), split=split_name,
            subset=None if subset is None else subset.tolist(), pre=self.pre,
            **cache_parts(self.rs.params["run"], split_name),
        )

    def source(self) -> str:
        family = registry.split_name(self.rs.spec.backbone)[0]
        return f"backbone '{self.rs.spec.backbone}' from distribution '{registry.info('backbone', family).distribution}'"

    def get(self, split_name: str, split, subset) -> FeatureSet:
        key = self.key(split_name, subset) if self.cache else None
        if key and (found := self.cache.get(key)) is not None:
            self.progress.note(f"{split_name} features: {len(found.labels)} from the cache")
            return found
        run = self.rs.params["run"]
        if self._module is None:
            self._module = feature_module(self.backbone, self.rs.spec.backbone, run)
        fs = extract(self._module, split, self.pre, device=self.device,
                     batch_size=run["batch_size"], num_workers=run["num_workers"], subset=subset,
                     progress=self.progress, stage=f"extract {split_name}",
                     transform=shifted(build_transform(self.pre), run, split_name), source=self.source())
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


def _split_features(rs: ResolvedSpec, cache: FeatureCache | None, device: str, progress: Progress):
    """(splits, backbone, feature getter, train FeatureSet, test FeatureSet) of a top-tuning spec."""
    spec, run = rs.spec, rs.params["run"]
    dataset = registry.create("dataset", spec.dataset, **rs.params["dataset"])
    backbone = registry.create("backbone", spec.backbone, **rs.params["backbone"])
    splits = dataset.load()
    feats = _Features(rs, backbone, dataset, cache if run["cache"] else None, device, progress)
    train = feats.get("train", splits.train, fixed_subset(np.asarray(splits.train.labels), run["max_train"]))
    test = feats.get("test", splits.test, fixed_subset(np.asarray(splits.test.labels), run["max_test"]))
    return splits, backbone, feats, train, test


def extract_features(rs: ResolvedSpec, cache: FeatureCache, device: str, progress: Progress) -> dict:
    """Only the feature half of top-tuning: {cache key: FeatureSet}, for other processes to reuse."""
    recorder = RecordingCache(cache)
    _split_features(rs, recorder, device, progress)
    return recorder.seen


def top_tune(rs: ResolvedSpec, cache: FeatureCache | None, device: str, progress: Progress) -> dict:
    """Extract (or reuse) features, fit the classifier plugin, predict the test split."""
    spec = rs.spec
    splits, backbone, feats, train, test = _split_features(rs, cache, device, progress)
    train, test, feature_info = finish(rs.params["run"], train, test)
    info = {**dataset_info(splits), **feature_info}
    if len(np.unique(train.labels)) < 2:
        raise DatasetError(f"dataset '{spec.dataset}': fewer than 2 classes have readable training images")

    clf = registry.create("classifier", spec.classifier, **rs.params["classifier"])
    with progress.stage(f"fit {spec.classifier}", unit="it"), reporting(progress):
        t0 = time.perf_counter()
        clf.fit(train.features, train.labels)
        fit_time = time.perf_counter() - t0
    t0 = time.perf_counter()
    y_pred = np.asarray(clf.predict(test.features))
    predict_time = time.perf_counter() - t0

    info.update(skipped_train=len(train.skipped), skipped_test=len(test.skipped),
                test_extract_time_s=test.extract_time_s, classifier_predict_time_s=predict_time,
                preprocessing=feats.pre, weights_digest=backbone.weights_digest())
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
