"""scikit-learn's digits under a covariate shift: Gaussian noise or blur, by default on the test split only.

Training on clean images and testing on corrupted ones measures how well frozen features transfer
when the input distribution moves while the labels do not. Everything is derived from the seeds, so
the same parameters always give the same pixels (and the same fingerprint, so cached features stay
valid).
"""

from __future__ import annotations

import hashlib
from typing import ClassVar

import numpy as np

from toptune.data import ArraySplit
from toptune.params import Param
from toptune.protocols import DatasetSplits

# Bump when the corruption changes pixels for the same parameters, so cached features are not reused.
ALGORITHM = "digits-shift-v1"
_SPLITS = {"test": ("test",), "train": ("train",), "both": ("train", "test")}


def corrupt(images: np.ndarray, shift: str, strength: float, rng: np.random.Generator) -> np.ndarray:
    """Images in [0, 1] after additive white Gaussian noise (std = strength) or blur (sigma = strength px)."""
    if shift == "noise":
        out = images + rng.normal(0.0, strength, images.shape)
    else:
        from scipy.ndimage import gaussian_filter

        # Blur each image on its own (sigma 0 along the batch axis); outside the 8x8 frame is blank paper.
        out = gaussian_filter(images, sigma=(0, strength, strength), mode="constant")
    return np.clip(out, 0.0, 1.0)


class DigitsShift:
    api_version = 1
    description = "scikit-learn digits, 10 classes, with Gaussian noise or blur on the test split (example plugin)"
    params: ClassVar[dict[str, Param]] = {
        "shift": Param("str", "noise", "corruption: additive white Gaussian noise or Gaussian blur",
                       choices=("noise", "blur")),
        "strength": Param("float", 0.2, "noise: std as a fraction of the intensity range; blur: sigma in pixels "
                          "of the 8x8 images; 0 = no shift", min=0.0, max=4.0),
        "apply_to": Param("str", "test", "which split is corrupted", choices=("test", "train", "both")),
        "seed": Param("int", 0, "seed of the noise (follows the run's --seed unless set)", min=0),
        "test_size": Param("float", 0.25, "fraction of each class held out for testing", min=0.05, max=0.95),
        "split_seed": Param("int", 0, "seed of the fixed stratified train/test split", min=0),
    }

    def __init__(self, shift="noise", strength=0.2, apply_to="test", seed=0, test_size=0.25, split_seed=0):
        self.shift, self.strength, self.apply_to = shift, strength, apply_to
        self.seed, self.test_size, self.split_seed = seed, test_size, split_seed

    def _arrays(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        digits = load_digits()
        images = digits.images / 16.0  # pixel values count ink in 4x4 blocks, 16 at most
        index = np.arange(len(images))
        train, test = train_test_split(index, test_size=self.test_size, stratify=digits.target,
                                       random_state=self.split_seed)
        # One generator per split keeps the test noise identical whether or not train is corrupted too.
        out = {}
        for offset, (name, rows) in enumerate((("train", np.sort(train)), ("test", np.sort(test)))):
            pixels = images[rows]
            if name in _SPLITS[self.apply_to] and self.strength > 0:
                pixels = corrupt(pixels, self.shift, self.strength, np.random.default_rng([self.seed, offset]))
            out[name] = (np.round(pixels * 255).astype(np.uint8), digits.target[rows])
        return out

    def load(self) -> DatasetSplits:
        arrays = self._arrays()
        classes = [str(d) for d in range(10)]
        info = {"mean_image_size": [8.0, 8.0], "shift": self.shift, "strength": self.strength,
                "shifted_splits": list(_SPLITS[self.apply_to]) if self.strength > 0 else []}
        return DatasetSplits(train=ArraySplit(*arrays["train"]), test=ArraySplit(*arrays["test"]),
                             classes=classes, info=info)

    def fingerprint(self) -> str:
        # The pixels themselves: two parameter sets that give the same images share cached features.
        h = hashlib.sha256(ALGORITHM.encode())
        for name, (images, labels) in sorted(self._arrays().items()):
            h.update(name.encode())
            h.update(images.tobytes())
            h.update(labels.astype(np.int64).tobytes())
        return h.hexdigest()[:16]
