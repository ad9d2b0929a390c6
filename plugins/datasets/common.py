"""Helpers shared by the dataset plugins: split parameters, stratified splits, RGB conversion, sizes."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from toptune.params import Param

# Bumped whenever a change here (e.g. the split algorithm) would change which images land in which split,
# so feature caches keyed by a fingerprint are invalidated.
SPLIT_ALGORITHM = "stratified-v1"
SIZE_SAMPLE = 100


# What a complete file of a format ends with, where Pillow decodes one that lost its end without complaint: a
# PNG cut inside its last chunk (IEND) or the checksum of its compressed data still gives every pixel.
# (JPEG, BMP, TIFF and WebP files cut short raise on ``Image.load``.)
END_MARKERS = {"PNG": b"IEND\xaeB`\x82"}
TAIL_BYTES = 4096  # trailing bytes a tool may leave after the end marker are allowed for


def check_complete(path: str, image_format: str | None) -> None:
    """Raise OSError for a file of ``image_format`` whose end marker is missing: it was cut short."""
    marker = END_MARKERS.get(image_format or "")
    if marker is None:
        return
    with open(path, "rb") as fh:
        size = fh.seek(0, 2)
        fh.seek(max(0, size - TAIL_BYTES))
        if marker not in fh.read():
            raise OSError(f"image file is truncated: the {image_format} file ends before its end marker")


def split_params() -> dict[str, Param]:
    """Fresh Param entries for datasets that must make their own train/test split."""
    return {
        "test_size": Param("float", 0.25, "fraction of each class held out for testing", min=0.01, max=0.99),
        "split_seed": Param("int", 0, "seed of the fixed train/test split (independent of the run seed)"),
    }


def stratified_split(labels: np.ndarray, test_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted (train, test) indices holding out about ``test_size`` of every class.

    Every class is rounded on its own and keeps at least one image on each side, so every class appears in
    both splits; the caller must make sure each class has at least 2 images.
    """
    rng = np.random.default_rng(seed)
    train, test = [], []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        n_test = int(np.clip(round(test_size * len(members)), 1, len(members) - 1))
        test.append(members[:n_test])
        train.append(members[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def sample_indices(n: int, k: int = SIZE_SAMPLE, seed: int = 0) -> np.ndarray:
    """At most ``k`` distinct indices in ``range(n)``, the same ones every call."""
    if n <= k:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=k, replace=False))


def mean_size(n: int, size_of: Callable[[int], tuple[int, int]]) -> list[float] | None:
    """[mean height, mean width] over a fixed sample; unreadable images are left out of the mean.

    ``size_of(i)`` returns (height, width). None when no sampled image could be read.
    """
    sizes = []
    for i in sample_indices(n):
        try:
            sizes.append(size_of(int(i)))
        except Exception:  # a corrupt image must not stop loading; the extractor reports it later
            continue
    if not sizes:
        return None
    return [round(float(v), 1) for v in np.mean(np.asarray(sizes, dtype=float), axis=0)]


def class_counts(labels: np.ndarray, n_classes: int) -> list[int]:
    return np.bincount(labels, minlength=n_classes).astype(int).tolist()


def digest(*parts: Any) -> str:
    """A short stable hex digest of JSON-able parts (and bytes)."""
    h = hashlib.sha256()
    for part in parts:
        data = part if isinstance(part, bytes) else json.dumps(part, sort_keys=True, default=str).encode()
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()[:16]


def split_info(train_labels: np.ndarray, test_labels: np.ndarray, classes: Sequence[str]) -> dict:
    """Counts worth recording for any dataset."""
    return {
        "n_train": int(len(train_labels)),
        "n_test": int(len(test_labels)),
        "n_classes": len(classes),
        "train_class_counts": class_counts(train_labels, len(classes)),
        "test_class_counts": class_counts(test_labels, len(classes)),
    }
