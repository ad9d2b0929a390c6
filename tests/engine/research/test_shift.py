"""Covariate shift: distortions change pixels or features by the requested amount, and labels never."""

import numpy as np
import pytest
import torch
from PIL import Image

from tests.support.research import STAGED, TINY, registered
from toptune.errors import ParamError
from toptune.features import FeatureSet, build_transform
from toptune.research.shift import awgn, blur, offset_features, pixel_shift, shifted
from toptune.runner import execute
from toptune.spec import RunSpec, resolve

PRE = {"input_size": 48, "interpolation": "bilinear", "crop_pct": 1.0, "mean": [0.4, 0.5, 0.6], "std": [0.2, 0.25, 0.3]}


@pytest.mark.parametrize("sigma", [0.02, 0.1])
def test_awgn_adds_noise_of_the_requested_sigma_and_clips(sigma):
    grey = torch.full((3, 64, 64), 0.5)
    noisy = awgn(grey, sigma, seed=1)
    noise = (noisy - grey).flatten()
    assert noise.std().item() == pytest.approx(sigma, rel=0.03)
    assert abs(noise.mean().item()) < 3 * sigma / 64  # ~3 standard errors of the mean of 12,288 draws
    assert torch.equal(noisy, awgn(grey, sigma, seed=1)) and not torch.equal(noisy, awgn(grey, sigma, seed=2))
    white = awgn(torch.ones(3, 8, 8), 0.5)
    assert white.max().item() <= 1.0 and white.min().item() >= 0.0 and white.min().item() < 1.0


@pytest.mark.parametrize("sigma", [1.0, 2.5])
def test_blur_spreads_an_impulse_with_the_requested_sigma(sigma):
    impulse = torch.zeros(3, 41, 41)
    impulse[:, 20, 20] = 1.0
    out = blur(impulse, sigma)[0]
    assert out.sum().item() == pytest.approx(1.0, abs=1e-5)  # blurring moves light, never adds it
    offsets = (torch.arange(41) - 20.0) ** 2
    spread = (out.sum(0) * offsets).sum().item()  # variance along x of the blurred impulse
    assert spread == pytest.approx(sigma**2, rel=0.05)  # the kernel is cut at 3σ, hence a few % less
    assert torch.equal(blur(impulse, 0.0), impulse)


def test_distortion_sits_between_resizing_and_normalisation():
    image = Image.new("RGB", (20, 20), (128, 128, 128))
    run = {"shift": "awgn", "shift_level": 0.05, "shift_on": "test", "shift_seed": 0}
    clean = build_transform(PRE)(image)
    noisy = shifted(build_transform(PRE), run, "test")(image)
    assert noisy.shape == clean.shape == (3, 48, 48)
    pixel_change = (noisy - clean) * torch.tensor(PRE["std"])[:, None, None]  # undo the normalisation's scale
    assert pixel_change.std().item() == pytest.approx(0.05, rel=0.05)
    assert torch.equal(shifted(build_transform(PRE), run, "train")(image), clean)  # train is not shifted


def test_which_split_is_shifted_and_what_the_cache_key_sees():
    run = {"shift": "blur", "shift_level": 2.0, "shift_on": "both", "shift_seed": 0}
    assert pixel_shift(run, "train") == pixel_shift(run, "test") == {"kind": "blur", "level": 2.0, "seed": 0}
    assert pixel_shift({**run, "shift_on": "train"}, "test") is None
    assert pixel_shift({**run, "shift_level": 0.0}, "train") is None  # level 0: the clean baseline, clean cache
    assert pixel_shift({**run, "shift": "embedding"}, "train") is None


def _features(n, d, seed):
    rng = np.random.default_rng(seed)
    return FeatureSet(rng.normal(size=(n, d)).astype(np.float32), np.arange(n) % 3, np.arange(n), 0.0)


@pytest.mark.parametrize("shift_on", ["test", "both"])
def test_embedding_shift_moves_features_by_the_requested_norm(shift_on):
    train, test = _features(30, 16, 0), _features(12, 16, 1)
    run = {"shift": "embedding", "shift_level": 3.5, "shift_on": shift_on, "shift_seed": 7}
    new_train, new_test, info = offset_features(run, train, test)
    moved = new_test.features - test.features
    assert np.allclose(moved, moved[0], atol=1e-5)  # one fixed offset for every row
    assert np.linalg.norm(moved[0]) == pytest.approx(3.5, rel=1e-5)
    train_moved = new_train.features - train.features
    if shift_on == "both":
        assert np.allclose(train_moved, moved[0], atol=1e-5)  # the same offset on both splits
    else:
        assert not train_moved.any()
    assert np.array_equal(new_test.labels, test.labels) and info["embedding_shift_norm"] == 3.5
    other_seed, _, _ = offset_features({**run, "shift_seed": 8, "shift_on": "both"}, train, test)
    assert not np.allclose(other_seed.features - train.features, moved[0])


def test_shifted_runs_keep_labels_and_change_predictions(tmp_path):
    from toptune.features.cache import FeatureCache

    cache = FeatureCache(tmp_path)
    with registered():
        clean = execute(RunSpec("top-tune", STAGED, "digits", "ridge", TINY), cache=cache)
        for shift in ({"shift": "awgn", "shift_level": 0.3}, {"shift": "blur", "shift_level": 2.0},
                      {"shift": "embedding", "shift_level": 5.0}):
            result = execute(RunSpec("top-tune", STAGED, "digits", "ridge", {**TINY, **shift}), cache=cache)
            assert np.array_equal(result.y_true, clean.y_true) and np.array_equal(result.samples, clean.samples)
            assert not np.array_equal(result.y_pred, clean.y_pred), shift
            assert result.params["run"]["shift"] == shift["shift"]
        fine = execute(RunSpec("fine-tune", STAGED, "digits", None,
                               {**TINY, "epochs": 1, "shift": "awgn", "shift_level": 0.2, "shift_on": "both"}))
        assert np.array_equal(fine.y_true, clean.y_true)


def test_shift_parameters_are_checked_before_running():
    with pytest.raises(ParamError, match="needs --method top-tune"):
        resolve(RunSpec("fine-tune", "efficientnet_lite0", "digits", None, {"shift": "embedding", "shift_level": 1}))
    with pytest.raises(ParamError, match="at most 1"):
        resolve(RunSpec(params={"shift": "awgn", "shift_level": 2}))
    with pytest.raises(ParamError, match="choose from"):
        resolve(RunSpec(params={"shift": "fog"}))
