"""Top-tuning: features from a frozen backbone (cached), then a classifier plugin fitted on them."""

from __future__ import annotations

import time

import numpy as np

from .. import registry
from ..data import dataset_info, unreadable
from ..errors import DatasetError
from ..features import modes
from ..features.cache import FeatureCache, RecordingCache
from ..features.source import FeatureSource
from ..models import save
from ..progress import Progress, reporting
from ..research import shift
from ..results import RunResult
from .base import CACHE_PARAM, COMMON_PARAMS, Method

PARAMS = {**COMMON_PARAMS, **CACHE_PARAM, **save.SAVE_PARAM, **modes.FEATURE_PARAMS, **shift.SHIFT_PARAMS}


def check(run: dict) -> None:
    modes.check(run)
    shift.check(run, on_features=True)


def chosen_params(clf, schema: dict) -> dict:
    """Values a classifier picked itself (e.g. sigma from the median heuristic), by the ``<param>_`` rule."""
    out = {}
    for name in schema:
        value = getattr(clf, f"{name}_", None)
        if isinstance(value, (int, float, str, bool, np.integer, np.floating)):
            out[name] = value.item() if isinstance(value, np.generic) else value
    return out


def split_features(rs, cache: FeatureCache | None, device: str, progress: Progress):
    """(splits, backbone, feature source, train FeatureSet, test FeatureSet) of a top-tuning spec."""
    spec, run = rs.spec, rs.params["run"]
    dataset = registry.create("dataset", spec.dataset, **rs.params["dataset"])
    backbone = registry.create("backbone", spec.backbone, **rs.params["backbone"])
    splits = dataset.load()
    source = FeatureSource(rs, backbone, dataset, cache if run["cache"] else None, device, progress)
    train = source.get("train", splits.train, source.subset("train", splits.train.labels))
    test = source.get("test", splits.test, source.subset("test", splits.test.labels))
    return splits, backbone, source, train, test


def extract_features(rs, cache: FeatureCache, device: str, progress: Progress) -> dict:
    """Only the feature half of top-tuning: {cache key: FeatureSet}, for other processes to reuse."""
    recorder = RecordingCache(cache)
    split_features(rs, recorder, device, progress)
    return recorder.seen


def top_tune(rs, cache: FeatureCache | None, device: str, progress: Progress) -> RunResult:
    """Extract (or reuse) features, fit the classifier plugin, predict the test split."""
    spec, run = rs.spec, rs.params["run"]
    splits, backbone, source, train, test = split_features(rs, cache, device, progress)
    train, test, shift_info = shift.offset_features(run, train, test)
    mode_state = modes.fit(run, train.features) if run["save_model"] else {}
    train, test, mode_info = modes.finish(run, train, test)
    info = {**dataset_info(splits), **mode_info, **shift_info}
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

    info.update(**unreadable({"train": (splits.train, train.skipped), "test": (splits.test, test.skipped)}),
                test_extract_time_s=test.extract_time_s, classifier_predict_time_s=predict_time,
                preprocessing=source.pre, weights_digest=backbone.weights_digest(), **source.ran)
    params = {ns: dict(values) for ns, values in rs.params.items()}
    params["classifier"].update(chosen_params(clf, type(clf).params))
    params["run"]["image_size"] = int(source.pre["input_size"])  # the size used, the backbone's when unset
    model = None
    if run["save_model"]:
        model, why = save.top_tuned(rs, backbone, source.pre, clf, splits.classes, mode_state,
                                    train.features.shape[1], compute=source.ran)
        if why:
            info["model"] = why
    return RunResult(
        accuracy=float(np.mean(y_pred == test.labels)),
        train_time_s=train.extract_time_s + fit_time,
        extract_time_s=train.extract_time_s,
        fit_time_s=fit_time,
        predict_time_s=test.extract_time_s + predict_time,
        trained_params=int(getattr(clf, "n_trained_params_", 0)),
        n_train=len(train.labels), n_test=len(test.labels), n_classes=len(splits.classes),
        feature_dim=int(train.features.shape[1]), cache_hit=train.cache_hit and test.cache_hit,
        pretrain_source=getattr(backbone, "pretrain_source", None), params=params, info=info,
        y_true=test.labels, y_pred=y_pred, samples=test.indices, model=model,
    )


METHOD = Method("top-tune", "frozen backbone features (cached) + a classifier plugin", PARAMS, top_tune,
                uses_classifier=True, check=check, extract=extract_features)
