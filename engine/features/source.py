"""Features of one split for a resolved run: from the feature cache, or extracted (the backbone built once).

The cache key says everything the features depend on: backbone and its parameters, the weights' digest,
the dataset's fingerprint, the split and subset, the preprocessing actually used, the feature mode, the
``precision`` parameter as given (left out at fp32, so caches written before precision existed, float32
on CPUs, keep their keys) and any pixel shift. The device never was part of the key, so 'auto' features a
sweep extracts on a GPU serve its CPU cells. ``sharing_key`` is the part of it a run spec
decides alone, so sweeps group cells that can share one extraction by the same rule the cache keys them by.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np

from .. import registry
from ..data import fixed_subset, preprocessing, unreadable_note
from ..measure.precision import resolve
from ..progress import Progress
from ..research.shift import pixel_shift, shifted
from .cache import FeatureCache, cache_key
from .extract import FeatureSet, build_transform, extract
from .modes import POOLED, feature_module

SPLITS = ("train", "test")


def spec_parts(rs, split: str) -> dict:
    """The parts of a split's cache key that the spec alone decides (pooled keys carry no shift)."""
    run = rs.params["run"]
    parts = {"backbone": rs.spec.backbone, "backbone_params": rs.params["backbone"],
             "dataset": rs.spec.dataset, "split": split, "mode": run.get("feature_mode") or POOLED}
    precision = run.get("precision") or "auto"
    if precision != "fp32":
        parts["precision"] = precision
    shift = pixel_shift(run, split)
    if shift:
        parts["shift"] = shift
    return parts


def sharing_key(rs) -> str:
    """Runs with the same key read the same features of both splits (before the weights and data, which
    the spec fixes through its plugins' parameters, are even looked at)."""
    run = rs.params["run"]
    parts = {"splits": [spec_parts(rs, s) for s in SPLITS], "dataset_params": rs.params["dataset"],
             "image_size": run["image_size"], "max_train": run["max_train"], "max_test": run["max_test"]}
    blob = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


class FeatureSource:
    """Gets features for one split from the cache, or extracts them (building the backbone once)."""

    def __init__(self, rs, backbone, dataset, cache: FeatureCache | None, device: str, progress: Progress):
        self.rs, self.backbone, self.dataset = rs, backbone, dataset
        self.cache, self.device, self.progress = cache, device, progress
        self.pre = preprocessing(backbone, rs.params["run"]["image_size"])
        self._module = None
        self.precision = rs.params["run"].get("precision") or "auto"
        # How the network ran, for the run's info: the plan until an extraction reports what ran.
        self.ran = {"precision": resolve(self.precision, device).precision}

    def key(self, split_name: str, subset) -> str:
        return cache_key(weights=self.backbone.weights_digest(), data=self.dataset.fingerprint(),
                         subset=None if subset is None else subset.tolist(), pre=self.pre,
                         **spec_parts(self.rs, split_name))

    def source(self) -> str:
        family = registry.split_name(self.rs.spec.backbone)[0]
        dist = registry.info("backbone", family).distribution
        return f"backbone '{self.rs.spec.backbone}' from distribution '{dist}'"

    def get(self, split_name: str, split, subset) -> FeatureSet:
        key = self.key(split_name, subset) if self.cache else None
        if key and (found := self.cache.get(key)) is not None:
            self.progress.note(f"{split_name} features: {len(found.labels)} from the cache")
            return found
        run = self.rs.params["run"]
        if self._module is None:
            self._module = feature_module(self.backbone, self.rs.spec.backbone, run)
        shift = pixel_shift(run, split_name)
        fs = extract(self._module, split, self.pre, device=self.device,
                     batch_size=run["batch_size"], num_workers=run["num_workers"], subset=subset,
                     progress=self.progress, stage=f"extract {split_name}", precision=self.precision,
                     transform=shifted(build_transform(self.pre), run, split_name) if shift else None,
                     source=self.source())
        self.ran = fs.compute
        for note in fs.compute.get("precision_notes", []):
            self.progress.note(f"{split_name}: {note}")
        if fs.skipped:
            self.progress.note(unreadable_note(split_name, split, fs.skipped))
        if key:
            self.cache.put(key, fs, meta={"spec": self.rs.spec.to_dict(), "split": split_name})
        return fs

    def subset(self, split_name: str, labels) -> np.ndarray | None:
        """The fixed stratified subset of a split this run uses (None: the whole split)."""
        limit = self.rs.params["run"]["max_train" if split_name == "train" else "max_test"]
        return fixed_subset(np.asarray(labels), limit)
