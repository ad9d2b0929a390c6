"""What a cluster run clusters: frozen-backbone features or small raw images, of both splits pooled.

Clustering is unsupervised and transductive, as in the study it reproduces: there is nothing to hold
out, so the model is fitted on, and the clusters scored on, every image of the train and test splits
(each cut to ``max_train`` / ``max_test`` when set). Labels travel alongside for scoring only.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ... import registry
from ...data import fixed_subset
from ...errors import DatasetError
from ...features.extract import DecodedSplit, collate
from ...features.source import FeatureSource
from ...measure.device import loader_workers
from ...progress import Progress

SPLITS = ("train", "test")


@dataclass
class Inputs:
    """Row i: ``x[i]`` is image ``index[i]`` of split ``split[i]``; ``sample`` numbers the pooled set."""

    x: np.ndarray
    labels: np.ndarray
    split: np.ndarray
    index: np.ndarray
    sample: np.ndarray
    prepare_time_s: float
    cache_hit: bool | None = None
    info: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.labels)


def subsets(splits, run: dict) -> dict:
    """The fixed per-split subsets (None = whole split) that every pipeline of a study shares."""
    limits = {"train": run["max_train"], "test": run["max_test"]}
    return {name: fixed_subset(np.asarray(getattr(splits, name).labels), limits[name]) for name in SPLITS}


def _pool(parts: dict, splits) -> dict:
    """Concatenate per-split (x, labels, index) and number samples: test rows follow the whole train split."""
    offset = {"train": 0, "test": len(splits.train)}
    return {"x": np.concatenate([parts[s][0] for s in SPLITS]),
            "labels": np.concatenate([parts[s][1] for s in SPLITS]).astype(np.int64),
            "split": np.concatenate([np.full(len(parts[s][2]), s) for s in SPLITS]),
            "index": np.concatenate([parts[s][2] for s in SPLITS]).astype(np.int64),
            "sample": np.concatenate([parts[s][2] + offset[s] for s in SPLITS]).astype(np.int64)}


def features(rs, dataset, splits, cache, device: str, progress: Progress) -> Inputs:
    """Backbone features of both splits, from the feature cache when there (shared with top-tuning)."""
    run = rs.params["run"]
    backbone = registry.create("backbone", rs.spec.backbone, **rs.params["backbone"])
    getter = FeatureSource(rs, backbone, dataset, cache if run["cache"] else None, device, progress)
    chosen = subsets(splits, run)
    sets = {s: getter.get(s, getattr(splits, s), chosen[s]) for s in SPLITS}
    pooled = _pool({s: (fs.features, fs.labels, fs.indices) for s, fs in sets.items()}, splits)
    info = {"preprocessing": getter.pre, "weights_digest": backbone.weights_digest(),
            "pretrain_source": getattr(backbone, "pretrain_source", None),
            **{f"skipped_{s}": len(fs.skipped) for s, fs in sets.items()}, **getter.ran}
    return Inputs(**pooled, prepare_time_s=sum(fs.extract_time_s for fs in sets.values()),
                  cache_hit=all(fs.cache_hit for fs in sets.values()), info=info)


def _rgb(image):
    return image.convert("RGB")


def _decode(split, size: int, subset, run: dict, progress: Progress, stage: str):
    """(pixels in [0, 1] as (n, 3, size, size), labels, kept indices, skipped) of one split."""
    import torch
    from torchvision import transforms as T

    subset = np.arange(len(split)) if subset is None else subset
    transform = T.Compose([T.Lambda(_rgb), T.Resize((size, size), antialias=True), T.ToTensor()])
    workers = loader_workers(run["num_workers"], "cpu", -(-len(subset) // run["batch_size"]))
    loader = torch.utils.data.DataLoader(DecodedSplit(split, transform, subset), batch_size=run["batch_size"],
                                         num_workers=workers, collate_fn=collate)
    images, kept, skipped = [], [], []
    with progress.stage(stage, len(subset)):
        for indices, x, bad in loader:
            skipped.extend(bad)
            if x is not None:
                images.append(x.numpy())
                kept.extend(indices)
            progress.advance(len(indices) + len(bad))
    if not kept:
        raise DatasetError(f"{stage}: no readable image among {len(subset)}")
    kept = np.asarray(kept, dtype=np.int64)
    return np.concatenate(images), np.asarray(split.labels, dtype=np.int64)[kept], kept, skipped


def pixels(rs, splits, progress: Progress) -> Inputs:
    """Both splits decoded and resized to ``vae_image_size`` pixels, RGB."""
    run = rs.params["run"]
    size, chosen = run["vae_image_size"], subsets(splits, run)
    t0 = time.perf_counter()
    parts, info = {}, {"preprocessing": {"input_size": size, "range": [0, 1]}}
    for s in SPLITS:
        x, y, kept, skipped = _decode(getattr(splits, s), size, chosen[s], run, progress, f"load {s} images")
        parts[s] = (x, y, kept)
        info[f"skipped_{s}"] = len(skipped)
    return Inputs(**_pool(parts, splits), prepare_time_s=time.perf_counter() - t0, info=info)


def scale(x: np.ndarray, how: str) -> np.ndarray:
    """Feature scaling fitted on the inputs themselves (no labels involved)."""
    x = np.asarray(x, dtype=np.float32)
    if how == "none":
        return x
    centred = x - x.mean(axis=0)
    if how == "per-feature":
        return centred / np.maximum(x.std(axis=0), 1e-8)
    # One overall scale keeps the relative weight of dimensions that the backbone gave them.
    return centred / max(float(centred.std()), 1e-8)
