"""scikit-learn's bundled 8x8 handwritten digits: the dataset that works offline, with no files."""

from __future__ import annotations

import numpy as np

from toptune.data import ArraySplit
from toptune.protocols import DatasetSplits

from . import common as C

# load_digits pixels count ink in 4x4 blocks of a 32x32 bitmap, so 16 is the darkest possible value.
_MAX_INK = 16.0


def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    pixels = np.round(bunch.images / _MAX_INK * 255.0).astype(np.uint8)
    return pixels, bunch.target.astype(np.int64)


class DigitsDataset:
    api_version = 1
    description = "scikit-learn's 1,797 8x8 handwritten digits, 10 classes (bundled, no download)"
    params = C.split_params()

    def __init__(self, test_size: float = 0.25, split_seed: int = 0):
        self.test_size = test_size
        self.split_seed = split_seed

    def load(self) -> DatasetSplits:
        images, labels = _digits()
        train, test = C.stratified_split(labels, self.test_size, self.split_seed)
        classes = [str(d) for d in range(10)]
        info = {"mean_image_size": [8.0, 8.0], **C.split_info(labels[train], labels[test], classes)}
        return DatasetSplits(
            train=ArraySplit(images[train], labels[train]),
            test=ArraySplit(images[test], labels[test]),
            classes=classes,
            info=info,
        )

    def fingerprint(self) -> str:
        images, labels = _digits()
        split = [self.test_size, self.split_seed, C.SPLIT_ALGORITHM]
        return C.digest("digits", images.tobytes(), labels.tobytes(), split)
