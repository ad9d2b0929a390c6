"""Extraction's input pipeline and precision: the uint8 fast path gives the same pixels, the precision a run
asks for runs (or falls back with a note in its info), is recorded, and keys the feature cache."""

import numpy as np
import pytest
import torch
from PIL import Image

from tests.support.plugins import TinyBackbone, tiny_backbones
from tests.support.research import StagedNet
from toptune import registry
from toptune.data import ArraySplit
from toptune.errors import ParamError
from toptune.features.cache import FeatureCache
from toptune.features.extract import Pixels, build_transform, extract
from toptune.measure.precision import native_bf16
from toptune.runner import execute
from toptune.spec import RunSpec

TINY = {"max_train": 60, "max_test": 30, "image_size": 16, "batch_size": 16}
AUTO = "bf16" if native_bf16() else "fp32"


class FlatNet(StagedNet):
    """Flattens its last map with ``view``, which a channels_last tensor does not allow."""

    def forward(self, x):
        y = self.blocks(self.stem(x))
        return y.view(len(y), -1)[:, :12]


@pytest.fixture(autouse=True)
def backbones():
    with tiny_backbones(staged=StagedNet, flat=FlatNet):
        yield


def photos(n=5, seed=0):
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 256, (int(rng.integers(9, 40)), int(rng.integers(9, 40)), 3),
                                         dtype=np.uint8)) for _ in range(n)]


@pytest.mark.parametrize("pre", [
    {"input_size": 16, "interpolation": "bilinear", "crop_pct": 1.0, "mean": [0.485, 0.456, 0.406],
     "std": [0.229, 0.224, 0.225]},
    {"input_size": 20, "interpolation": "bicubic", "crop_pct": 0.875, "mean": [0.5] * 3, "std": [0.25] * 3},
])
def test_the_uint8_fast_path_gives_exactly_the_floats_of_the_transform(pre):
    images = photos()
    slow = torch.stack([build_transform(pre)(im) for im in images])
    pixels = Pixels(pre)
    batch = torch.stack([pixels(im) for im in images])
    assert batch.dtype == torch.uint8 and batch.shape == (5, pre["input_size"], pre["input_size"], 3)
    fast = pixels.normalise(batch)
    assert fast.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(fast, slow)  # bit for bit


def test_extraction_records_how_it_ran_and_matches_the_float_path():
    split = ArraySplit(np.stack([np.asarray(im.resize((12, 12))) for im in photos(40)]), np.arange(40) % 4)
    pre = TinyBackbone.preprocessing
    module = registry.create("backbone", "staged").build()
    fast = extract(module, split, pre, batch_size=16, precision="fp32")
    slow = extract(module, split, pre, batch_size=16, precision="fp32", transform=build_transform(pre))
    assert np.array_equal(fast.features, slow.features)
    assert fast.compute == {"precision": "fp32", "channels_last": True, "num_workers": 0}
    auto = extract(registry.create("backbone", "staged").build(), split, pre, batch_size=16)
    assert auto.compute["precision"] == AUTO
    assert np.abs(auto.features - fast.features).max() < 0.05 * np.abs(fast.features).max()


def test_a_run_records_its_precision_and_the_cache_keys_by_it(tmp_path):
    cache = FeatureCache(tmp_path / "features")
    spec = RunSpec("top-tune", "staged", "digits", "ridge", TINY)
    first = execute(spec, cache=cache)
    assert first.params["run"]["precision"] == "auto" and not first.cache_hit
    assert (first.info["precision"], first.info["channels_last"], first.info["num_workers"]) == (AUTO, True, 0)
    assert execute(spec, cache=cache).cache_hit
    fp32 = execute(RunSpec("top-tune", "staged", "digits", "ridge", {**TINY, "precision": "fp32"}), cache=cache)
    assert not fp32.cache_hit and fp32.info["precision"] == "fp32"


def test_a_backbone_that_breaks_channels_last_runs_contiguous_with_a_note():
    result = execute(RunSpec("top-tune", "flat", "digits", "ridge", {**TINY, "cache": False}))
    assert result.info["channels_last"] is False and result.info["precision"] == AUTO
    (note,) = result.info["precision_notes"]
    assert note.startswith(f"planned {AUTO} channels_last, ran {AUTO}: ") and "view" in note
    assert result.accuracy > 0.2


def test_an_unknown_precision_is_one_line_before_anything_runs():
    with pytest.raises(ParamError, match=r"'precision': 'fp64' \(choose from auto, fp32, bf16, fp16\)"):
        execute(RunSpec("top-tune", "staged", "digits", "ridge", {**TINY, "precision": "fp64"}))
