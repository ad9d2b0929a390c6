"""Covariate shift: distorted images or offset features, on the training split, the test split or both.

Pixel distortions act on the network's input tensor in [0, 1], after resizing and before the
backbone's normalisation, so a strength means the same thing whatever the dataset's own resolution:

- ``awgn``: additive white Gaussian noise of standard deviation ``level``, independent per pixel and
  channel, clipped back to [0, 1]. Each image's noise is seeded from its own content and
  ``shift_seed``, so extraction is deterministic and the feature cache stays valid.
- ``blur``: Gaussian blur of standard deviation ``level`` input pixels (kernel 2⌈3σ⌉+1, reflected
  borders).

``embedding`` adds one fixed vector of L2 norm ``level`` to every feature row of the shifted split(s);
its direction is a seeded Gaussian draw. Features are cached unshifted, so these runs reuse the cache.
Labels are never touched.
"""

from __future__ import annotations

import dataclasses
import math
import zlib

import numpy as np

from ..errors import ParamError
from ..params import Param

SHIFT_KINDS = ("none", "awgn", "blur", "embedding")
PIXEL_SHIFTS = ("awgn", "blur")
SHIFT_SPLITS = ("train", "test", "both")
SHIFT_PARAMS = {
    "shift": Param("str", "none", "covariate shift: awgn (Gaussian pixel noise), blur (Gaussian blur) or "
                   "embedding (a fixed offset added to the features; top-tuning only)", choices=SHIFT_KINDS),
    "shift_level": Param("float", 0.0, "shift strength: noise σ on [0,1] pixels, blur σ in input pixels, or "
                         "the offset's L2 norm", min=0.0),
    "shift_on": Param("str", "test", "which split is shifted", choices=SHIFT_SPLITS),
    "shift_seed": Param("int", 0, "seed of the noise and of the offset's direction", min=0),
}


def check(run: dict, on_features: bool) -> None:
    """Combinations the schema allows but that cannot run; ``on_features``: the method trains on
    extracted features (so an embedding shift can apply)."""
    if run.get("shift") == "embedding" and not on_features:
        raise ParamError("shift=embedding offsets extracted features, so it needs --method top-tune; "
                         "use awgn or blur to shift the images of a fine-tuning run")
    if run.get("shift") == "awgn" and run.get("shift_level", 0) > 1:
        raise ParamError(f"shift_level for awgn is a noise σ on [0,1] pixels: at most 1, got {run['shift_level']:g}")


def _active(run: dict, split: str) -> bool:
    return (run.get("shift", "none") != "none" and (run.get("shift_level") or 0) > 0
            and run.get("shift_on", "test") in (split, "both"))


def pixel_shift(run: dict, split: str) -> dict | None:
    """The distortion applied to this split's images ({kind, level, seed}), or None."""
    if not _active(run, split) or run["shift"] not in PIXEL_SHIFTS:
        return None
    return {"kind": run["shift"], "level": float(run["shift_level"]), "seed": int(run.get("shift_seed") or 0)}


def embedding_shift(run: dict, split: str) -> float | None:
    """The norm of the offset added to this split's features, or None."""
    if not _active(run, split) or run["shift"] != "embedding":
        return None
    return float(run["shift_level"])


def awgn(x, sigma: float, seed: int = 0):
    """``x`` (a [0,1] image tensor) plus N(0, σ²) noise, clipped; the noise depends on x and seed only."""
    import torch

    content = zlib.crc32(x.detach().cpu().contiguous().numpy().tobytes())
    generator = torch.Generator().manual_seed((content << 16) ^ int(seed))
    noise = torch.randn(x.shape, generator=generator, dtype=x.dtype)
    return (x + sigma * noise).clamp(0.0, 1.0)


def blur(x, sigma: float):
    """Gaussian blur of standard deviation ``sigma`` pixels."""
    from torchvision.transforms import functional as F

    if sigma <= 0:
        return x
    size = 2 * math.ceil(3 * sigma) + 1
    return F.gaussian_blur(x, [size, size], [sigma, sigma])


class Distortion:
    """A pixel distortion as a torchvision transform step (on tensors in [0, 1])."""

    def __init__(self, kind: str, level: float, seed: int = 0):
        self.kind, self.level, self.seed = kind, level, seed

    def __call__(self, x):
        return awgn(x, self.level, self.seed) if self.kind == "awgn" else blur(x, self.level)

    def __repr__(self) -> str:
        return f"Distortion({self.kind}, level={self.level:g})"


def shifted(transform, run: dict, split: str):
    """``transform`` (a Compose ending in Normalize) with this split's distortion inserted before Normalize."""
    from torchvision import transforms as T

    spec = pixel_shift(run, split)
    if spec is None:
        return transform
    steps = list(transform.transforms)
    at = max((i for i, s in enumerate(steps) if isinstance(s, T.Normalize)), default=len(steps))
    return T.Compose([*steps[:at], Distortion(**spec), *steps[at:]])


def embedding_offset(dim: int, norm: float, seed: int = 0) -> np.ndarray:
    """A fixed (dim,) vector of L2 norm ``norm`` in a seeded random direction."""
    direction = np.random.default_rng(seed).standard_normal(dim)
    return direction * (norm / np.linalg.norm(direction))


def offset_features(run: dict, train, test) -> tuple:
    """(train, test, info): the FeatureSets with this run's embedding shift added to the shifted split(s).

    Features are cached unshifted, so the offset is added after the cache and before anything (an
    ``fne`` standardisation, a classifier) sees them: a shift on test alone moves test rows relative to
    train's statistics.
    """
    sets, info = {"train": train, "test": test}, {}
    for split, fs in sets.items():
        norm = embedding_shift(run, split)
        if norm is not None:
            offset = embedding_offset(fs.features.shape[1], norm, run.get("shift_seed") or 0)
            sets[split] = dataclasses.replace(fs, features=(fs.features + offset).astype(np.float32))
            info["embedding_shift_norm"] = norm
    return sets["train"], sets["test"], info
