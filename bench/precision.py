"""The accuracy effect of bf16 features: the same images extracted in float32 and in bf16 autocast, then the
same classifiers fitted on each, on several stratified splits.

    python bench/precision.py [--image-size 224] [--splits 5] [--per-class 200] [--classifiers kernel,ridge,logistic]
    python bench/precision.py --feature-mode fne     # the full-network embedding (discretised) instead

Datasets: scikit-learn's digits (1,797 images) and an image folder of photo crops (``bench/photos.py``,
10 classes). Features come from toptune's own extraction (EfficientNet-Lite0, ``precision=fp32`` and
``precision=bf16``); every classifier runs with its defaults, as a default run would. Each split holds out
25 % per class, like the datasets' own split. Prints, per dataset and classifier, the mean accuracy of each
precision, the mean difference and the largest one over the splits, in points, against the 0.3-point target.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from photos import make_photo_folder

import toptune  # noqa: F401  (before torch: toptune turns on torch's huge-page allocations)
from toptune import registry
from toptune.features.extract import extract
from toptune.features.modes import FNE, POOLED, feature_module, full_network_embedding
from toptune.measure.precision import native_bf16

TARGET_POINTS = 0.3


def features(dataset: str, params: dict, image_size: int | None, precision: str,
             mode: str) -> tuple[np.ndarray, np.ndarray, dict]:
    """Features of every image of both splits (train then test), their labels, and how the network ran."""
    from toptune.data import preprocessing

    splits = registry.create("dataset", dataset, **params).load()
    backbone = registry.create("backbone", "efficientnet_lite0")
    module = feature_module(backbone, "efficientnet_lite0", {"feature_mode": mode})
    pre = preprocessing(backbone, image_size)
    sets = [extract(module, split, pre, precision=precision) for split in (splits.train, splits.test)]
    return (np.concatenate([s.features for s in sets]), np.concatenate([s.labels for s in sets]), sets[0].compute)


def accuracy(name: str, x: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray, mode: str) -> float:
    clf = registry.create("classifier", name, **({"device": "cpu"} if name == "kernel" else {}))
    x_train, x_test = x[train], x[test]
    if mode == FNE:  # standardised with the training rows' statistics, then discretised, as a run does
        x_train, x_test = full_network_embedding(x_train, x_test)
    clf.fit(x_train, y[train])
    return float(np.mean(np.asarray(clf.predict(x_test)) == y[test]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-size", type=int, default=None, help="input size (default: the backbone's, 224)")
    parser.add_argument("--splits", type=int, default=5)
    parser.add_argument("--per-class", type=int, default=200, help="photo crops per class")
    parser.add_argument("--classifiers", default="kernel,ridge,logistic")
    parser.add_argument("--photos", default=None, help="photo folder to (re)use (default: a temporary one)")
    parser.add_argument("--feature-mode", default=POOLED, choices=(POOLED, FNE))
    args = parser.parse_args()
    from sklearn.model_selection import StratifiedShuffleSplit

    if not native_bf16():
        print("note: this CPU has no native bf16 dot products; bf16 is emulated (same numbers, slower)")
    folder = Path(args.photos or tempfile.mkdtemp())
    make_photo_folder(folder, args.per_class)
    datasets = {"digits": ("digits", {}), "photos": ("imagefolder", {"path": str(folder)})}
    classifiers = args.classifiers.split(",")
    rows, t0 = [], time.perf_counter()
    for label, (dataset, params) in datasets.items():
        x32, y, ran32 = features(dataset, params, args.image_size, "fp32", args.feature_mode)
        x16, y16, ran16 = features(dataset, params, args.image_size, "bf16", args.feature_mode)
        assert np.array_equal(y, y16)
        gap = float(np.linalg.norm(x16 - x32) / np.linalg.norm(x32))
        print(f"{label}: {len(y)} images; bf16 run as {ran16['precision']} (fp32 as {ran32['precision']}); "
              f"bf16 features {100 * gap:.2f} % from fp32 (relative L2)", flush=True)
        cuts = StratifiedShuffleSplit(n_splits=args.splits, test_size=0.25, random_state=0).split(x32, y)
        for train, test in cuts:
            for name in classifiers:
                rows.append((label, name, accuracy(name, x32, y, train, test, args.feature_mode),
                             accuracy(name, x16, y, train, test, args.feature_mode), len(test)))
    size = args.image_size or 224
    print(f"\nEfficientNet-Lite0 at {size} px, {args.feature_mode} features, {args.splits} stratified splits "
          f"(25 % test), classifier defaults; "
          f"{time.perf_counter() - t0:.0f} s in all\n")
    print("| dataset | classifier | test images | fp32 accuracy | bf16 accuracy | mean Δ (points) | "
          f"largest |Δ| | within {TARGET_POINTS} |")
    print("|---|---|---:|---:|---:|---:|---:|---|")
    for label in datasets:
        for name in classifiers:
            mine = [r for r in rows if r[0] == label and r[1] == name]
            fp32, bf16 = np.array([r[2] for r in mine]), np.array([r[3] for r in mine])
            delta = 100 * (bf16 - fp32)
            ok = abs(delta.mean()) <= TARGET_POINTS
            print(f"| {label} | {name} | {mine[0][4]} | {fp32.mean():.4f} | {bf16.mean():.4f} | {delta.mean():+.2f} | "
                  f"{np.abs(delta).max():.2f} | {'yes' if ok else 'NO'} |")


if __name__ == "__main__":
    main()
