"""Stores for the Clustering and Sweeps page tests, written through the real engine with tiny settings.

A 150-image digits set whose classes have word names (so pages must show names, not indices) and the
dashboard tests' tiny CNN keep every run around a second. The plugins stay registered while a module's
tests run: a sweep's grid is expanded with the installed plugins' schemas, by the page as by the engine.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest

from tests.support.dashboard import TINY, TinyBackbone
from tests.support.plugins import registered
from toptune import jobs
from toptune.errors import DatasetError
from toptune.features.cache import FeatureCache
from toptune.params import Param
from toptune.protocols import DatasetSplits
from toptune.runner import run, start_record
from toptune.spec import resolve
from toptune.store import Store
from toptune.studies import clustering
from toptune.sweeps.spec import SweepSpec

BACKBONE, DATASET = "dash-study-cnn", "dash-digits"
CLASSES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
# As tests/test_clustering.py keeps cluster runs under a second: few epochs, narrow models, tiny images.
QUICK = {"epochs": 3, "vae_batch_size": 32, "hidden": "32", "width": 4, "vae_image_size": 8, "kmeans_init": 2,
         "batch_size": 64, "cache": False}


class _Split:
    def __init__(self, images, labels):
        self.images, self.labels = images, labels

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        from PIL import Image

        return Image.fromarray(self.images[i]).convert("RGB"), int(self.labels[i])


class WordDigits:
    api_version, description = 1, "150 digits, first 100 train / last 50 test, classes named in words"
    params: ClassVar = {"scale": Param("float", 1.0, "brightness factor, only to tell runs apart", min=0.1)}

    def __init__(self, scale=1.0):
        from sklearn.datasets import load_digits

        bunch = load_digits()
        self.images = np.clip(bunch.images[:150] / 16 * 255 * scale, 0, 255).astype(np.uint8)
        self.labels = bunch.target[:150].astype(np.int64)
        self.scale = scale

    def load(self):
        return DatasetSplits(_Split(self.images[:100], self.labels[:100]), _Split(self.images[100:], self.labels[100:]),
                             list(CLASSES), {})

    def fingerprint(self):
        return f"word-digits-150-{self.scale}"


def plugins():
    return registered(**{BACKBONE: ("backbone", TinyBackbone), DATASET: ("dataset", WordDigits)})


def fill_studies(path) -> dict:
    """A study over Z = 2, 4 with two seeds and exported latents, and a k-means-only one without them."""
    store = Store(path)
    specs = clustering.plan(DATASET, BACKBONE, [2, 4], seeds=2, shared={**QUICK, "export_latents": True},
                            preset="gpu")
    full = clustering.STUDY.run(specs, store)
    bare = clustering.STUDY.run(clustering.plan(DATASET, BACKBONE, [2], seeds=1, shared=QUICK,
                                                pipelines=["kmeans"], preset="gpu"), store)
    return {"full": full, "bare": bare}


def sweep_spec(missing_folder) -> SweepSpec:
    """8 cells: 2 datasets × ridge alpha 0.1 / 10 × 2 seeds; the imagefolder cells point at an empty folder."""
    return SweepSpec.from_dict({
        "name": "dash-grid", "datasets": [DATASET, "imagefolder"], "backbones": [BACKBONE], "classifiers": ["ridge"],
        "seeds": 2, "params": {**TINY, "classifier.alpha": [0.1, 10.0], "dataset.path": str(missing_folder)}})


def fill_sweep(path, cache_dir) -> dict:
    """Cells in every state: 3 finished, 1 failed, 1 running (this process's), 3 queued (a job no worker takes).

    Plus a second sweep known only from its one recorded run, as ``toptune sweep`` leaves one.
    """
    store, cache = Store(path), FeatureCache(cache_dir)
    empty = path.parent / "no-class-folders"  # exists, so its run is recorded, then fails as it loads
    empty.mkdir(exist_ok=True)
    spec = sweep_spec(empty)
    cells = spec.cells()
    mine = [c for c in cells if c.spec.dataset == DATASET]
    broken = [c for c in cells if c.spec.dataset == "imagefolder"]

    def links(cell, grid=spec):
        return {"sweep_id": grid.sweep_id, "cell_key": cell.key}

    finished = [run(c.spec, store, cache=cache, links=links(c))[0] for c in mine[:3]]
    with pytest.raises(DatasetError):
        run(broken[0].spec, store, cache=cache, links=links(broken[0]))
    running = store.start_run({**start_record(resolve(mine[3].spec)), **links(mine[3])})
    job_id = jobs.submit(path, "sweep", spec.to_dict())
    other = SweepSpec.from_dict({"datasets": [DATASET], "backbones": [BACKBONE], "classifiers": ["ridge"],
                                 "seeds": [7], "params": TINY})
    lone = run(other.cells()[0].spec, store, cache=cache, links=links(other.cells()[0], other))[0]
    return {"spec": spec, "cells": cells, "finished": finished, "failed": broken[0].key, "running": running,
            "queued": [c.key for c in broken[1:]], "job": job_id, "other": other, "lone": lone}


@pytest.fixture
def store(recorded, monkeypatch):
    """The module's ``recorded`` (store path, what was made), with the pages pointed at that store."""
    path, made = recorded
    monkeypatch.setenv("TOPTUNE_STORE", str(path))
    return path, made
