"""Writes that are optimisations (the feature cache, a run's model and tables beside the store) never fail a run:
it warns once and is recorded, saying what was not written. And checks that are cheap run before the row exists."""

from __future__ import annotations

import numpy as np
import pytest

from tests.support.research import STAGED, TINY, registered
from toptune.errors import ParamError, PluginError
from toptune.features.cache import FeatureCache
from toptune.features.extract import FeatureSet
from toptune.progress import Progress
from toptune.runner import run
from toptune.spec import RunSpec
from toptune.store import Store


class Notes(Progress):
    def __init__(self):
        self.lines = []

    def note(self, text):
        self.lines.append(text)


def _spec(**params):
    return RunSpec("top-tune", STAGED, "digits", "ridge", {**TINY, **params})


def test_a_cache_folder_that_cannot_be_written_warns_once_and_the_run_is_recorded(tmp_path):
    blocked = tmp_path / "cache"
    blocked.write_text("a file where the cache folder should be")
    store, notes = Store(tmp_path / "s.duckdb"), Notes()
    with registered():
        run_id, result = run(_spec(), store, cache=FeatureCache(blocked), progress=notes)
    row = store.get_run(run_id)
    assert row["status"] == "finished" and row["accuracy"] == result.accuracy
    assert "could not be written" in row["info"]["feature_cache"]
    assert sum("feature cache" in line for line in notes.lines) == 1  # train and test both failed: one warning


def test_a_cache_that_cannot_be_read_is_skipped(tmp_path):
    cache = FeatureCache(tmp_path / "cache")
    features = FeatureSet(np.zeros((2, 3), np.float32), np.zeros(2, np.int64), np.arange(2), 0.1, [])
    cache.put("ab" * 16, features)
    cache.path("ab" * 16).write_bytes(b"not an npz")
    assert cache.get("ab" * 16) is None and not cache.path("ab" * 16).exists() and cache.failures == []
    cache.root.rename(tmp_path / "moved")
    cache.root.write_text("in the way")
    cache.put("cd" * 16, features)
    assert cache.get("cd" * 16) is None and len(cache.failures) == 1


def test_a_model_that_cannot_be_saved_leaves_a_recorded_run_saying_why(tmp_path):
    store, notes = Store(tmp_path / "s.duckdb"), Notes()
    (tmp_path / "s.duckdb.artifacts").write_text("a file where the run folders go")
    with registered():
        run_id, _ = run(_spec(), store, cache=FeatureCache(tmp_path / "cache"), progress=notes)
    row = store.get_run(run_id)
    assert row["status"] == "finished" and row["model_bytes"] is None
    assert row["info"]["model"].startswith("not saved")
    assert any("model was not saved" in line for line in notes.lines)


@pytest.mark.parametrize("spec, error, message", [
    (RunSpec("top-tune", "timm:no_such_model_xyz", "digits", "ridge"), PluginError, "timm has no model"),
    (RunSpec("top-tune", "efficientnet_lite0", "digits", "ridge", {"backbone.weights": "/nowhere/w.pt"}),
     PluginError, "weights file not found"),
    (RunSpec("top-tune", "efficientnet_lite0", "imagefolder", "ridge", {"path": "/nowhere/images"}), Exception,
     "does not exist"),
    (RunSpec("top-tune", "efficientnet_lite0", "digits", "ridge", {"alpha": "inf"}), ParamError, "finite"),
    (RunSpec("top-tune", "efficientnet_lite0", "digits", "ridge", seed=2**40), ParamError, "seed"),
])
def test_cheap_checks_run_before_the_run_is_recorded(tmp_path, spec, error, message):
    store = Store(tmp_path / "s.duckdb")
    with pytest.raises(error, match=message):
        run(spec, store)
    assert not store.path.exists()  # not even the store was created
