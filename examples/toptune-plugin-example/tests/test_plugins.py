"""How a plugin author tests: toptune's smoke test first, then what is specific to these plugins.

Run from this folder after installing the package: ``pip install -e '.[test]' && python -m pytest -q``.
"""

import numpy as np
import pytest
from sklearn.base import clone

from toptune import registry
from toptune.plugin_check import check_plugins


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TOPTUNE_CACHE_DIR", str(tmp_path / "features"))


@pytest.mark.parametrize("name", ["lenet5", "nearest-mean", "digits-shift"])
def test_passes_toptunes_smoke_test(name):
    [result] = check_plugins(name)
    assert result.distribution == "toptune-plugin-example"
    assert result.status == "pass", result.reason


def test_the_shift_corrupts_only_the_chosen_split():
    clean = registry.create_dataset("digits-shift", strength=0.0).load()
    noisy = registry.create_dataset("digits-shift", strength=0.3).load()
    assert np.array_equal(clean.train.images, noisy.train.images)
    assert np.array_equal(clean.test.labels, noisy.test.labels)
    assert np.abs(clean.test.images.astype(int) - noisy.test.images).mean() > 10
    both = registry.create_dataset("digits-shift", strength=0.3, apply_to="both").load()
    assert not np.array_equal(clean.train.images, both.train.images)


def test_pixels_and_fingerprint_follow_the_parameters():
    def fingerprint(**params):
        return registry.create_dataset("digits-shift", **params).fingerprint()

    assert fingerprint(seed=1) == fingerprint(seed=1)
    assert len({fingerprint(seed=1), fingerprint(seed=2), fingerprint(shift="blur"), fingerprint(strength=0.0)}) == 4
    # No corruption at all: the noise seed cannot matter, so the cached features are shared.
    assert fingerprint(strength=0.0, seed=1) == fingerprint(strength=0.0, seed=2)


def test_blur_spreads_ink_without_adding_any():
    clean = registry.create_dataset("digits-shift", strength=0.0).load().test.images.astype(float)
    blurred = registry.create_dataset("digits-shift", shift="blur", strength=1.0).load().test.images.astype(float)
    assert (blurred > 0).sum() > (clean > 0).sum()
    assert blurred.sum() <= clean.sum() * 1.01  # blur only moves ink (some leaves the 8x8 frame)


def test_lenet_weights_follow_the_seed_and_leave_the_global_rng_alone():
    import torch

    def digest(**params):
        return registry.create_backbone("lenet5", **params).weights_digest()

    assert digest(init_seed=3) == digest(init_seed=3)
    assert len({digest(init_seed=3), digest(init_seed=4), digest(activation="relu")}) == 3
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    registry.create_backbone("lenet5").build()
    assert torch.equal(torch.rand(3), expected)


def test_nearest_mean_classifies_by_the_closest_mean_and_clones_like_sklearn():
    X = np.array([[0.0, 0.0], [0.0, 2.0], [10.0, 0.0], [10.0, 2.0]])
    y = np.array(["a", "a", "b", "b"])
    clf = registry.create_classifier("nearest-mean", standardize=False).fit(X, y)
    assert clf.predict([[4.0, 1.0], [6.0, 1.0]]).tolist() == ["a", "b"]
    assert clf.n_trained_params_ == 4
    # Means (1, 2) and (11, 2): (20, 40) is nearer b's mean but points exactly along a's.
    euclidean = clone(clf).fit(X + 1, y)
    cosine = clone(clf).set_params(metric="cosine").fit(X + 1, y)
    assert euclidean.predict([[20.0, 40.0]]).tolist() == ["b"]
    assert cosine.predict([[20.0, 40.0]]).tolist() == ["a"]
    with pytest.raises(ValueError, match="metric"):
        clone(clf).set_params(metric="manhattan").fit(X, y)
