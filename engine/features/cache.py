"""The on-disk feature cache: one .npz per key, written atomically so a crash never leaves half a file.

Extraction runs once per (backbone, weights, dataset, split, preprocessing, mode); every classifier
fitted afterwards reads the cached arrays. ``RecordingCache`` and ``PreloadedCache`` wrap it for sweeps,
which extract once and hand features to other processes in memory.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ..progress import current
from .extract import FeatureSet

FORMAT_VERSION = 1


def default_cache_dir() -> Path:
    return Path(os.environ.get("TOPTUNE_CACHE_DIR") or Path.home() / ".cache" / "toptune" / "features")


def cache_key(**parts: Any) -> str:
    blob = json.dumps({"format": FORMAT_VERSION, **parts}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


class FeatureCache:
    """Feature arrays on disk, one .npz per key, written atomically so a crash never leaves half a file.

    The cache is an optimisation: a folder that cannot be read or written (read-only, full, a file in the way)
    never fails a run. The first failure is noted once on the running progress, and every one is kept in
    ``failures`` (the runner records the first in the run's info); the run extracts and keeps its features.
    """

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = Path(root) if root else default_cache_dir()
        self.failures: list[str] = []

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.npz"

    def _failed(self, what: str, exc: OSError) -> None:
        why = exc.strerror.lower() if exc.strerror else str(exc) or type(exc).__name__
        text = f"the feature cache at {self.root} could not be {what} ({why}); the run went on without it"
        if not self.failures:
            current().note(f"warning: {text}")
        self.failures.append(text)

    def get(self, key: str) -> FeatureSet | None:
        path = self.path(key)
        try:
            if not path.exists():
                return None
        except OSError as exc:
            self._failed("read", exc)
            return None
        try:
            with np.load(path, allow_pickle=False) as z:
                skipped = json.loads(str(z["skipped"]))
                return FeatureSet(z["features"], z["labels"], z["indices"], float(z["extract_time_s"]),
                                  [tuple(s) for s in skipped], cache_hit=True)
        except Exception:
            try:
                path.unlink(missing_ok=True)  # unreadable entry: extract again rather than fail the run
            except OSError as exc:
                self._failed("cleaned", exc)
            return None

    def put(self, key: str, fs: FeatureSet, meta: dict | None = None) -> None:
        path = self.path(key)
        tmp = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
            with os.fdopen(fd, "wb") as fh:
                np.savez(fh, features=fs.features, labels=fs.labels, indices=fs.indices,
                         extract_time_s=np.float64(fs.extract_time_s), skipped=json.dumps(fs.skipped),
                         meta=json.dumps(meta or {}, default=str))
            os.replace(tmp, path)
        except OSError as exc:
            self._failed("written", exc)
        finally:
            if tmp is not None and os.path.exists(tmp):
                try:
                    os.unlink(tmp)
                except OSError:
                    pass


class RecordingCache:
    """A cache wrapper that remembers every feature set it hands out or stores, by key."""

    def __init__(self, inner: FeatureCache | None):
        self.inner, self.seen = inner, {}

    @property
    def failures(self) -> list[str]:
        return self.inner.failures if self.inner else []

    def get(self, key: str) -> FeatureSet | None:
        found = self.inner.get(key) if self.inner else None
        if found is not None:
            self.seen[key] = found
        return found

    def put(self, key: str, fs: FeatureSet, meta: dict | None = None) -> None:
        self.seen[key] = fs
        if self.inner:
            self.inner.put(key, fs, meta)


class PreloadedCache:
    """Features handed over in memory (e.g. through Ray's object store) in front of a disk cache."""

    def __init__(self, preloaded: dict[str, FeatureSet], fallback: FeatureCache | None = None):
        self.preloaded, self.fallback = preloaded, fallback

    @property
    def failures(self) -> list[str]:
        return self.fallback.failures if self.fallback else []

    def get(self, key: str) -> FeatureSet | None:
        if key in self.preloaded:
            return dataclasses.replace(self.preloaded[key], cache_hit=True)
        return self.fallback.get(key) if self.fallback else None

    def put(self, key: str, fs: FeatureSet, meta: dict | None = None) -> None:
        if self.fallback:
            self.fallback.put(key, fs, meta)
